//! Check: "did you mean" suggestions for misspelt names and fields.

/// The candidate closest to `name`, if it is close enough to be a plausible typo.
pub fn did_you_mean<'a, I>(name: &str, candidates: I) -> Option<&'a str>
where
    I: IntoIterator<Item = &'a str>,
{
    let name_lower = name.to_lowercase();
    candidates
        .into_iter()
        .map(|c| {
            (
                strsim::damerau_levenshtein(&name_lower, &c.to_lowercase()),
                c,
            )
        })
        .filter(|(distance, c)| {
            let longest = name.chars().count().max(c.chars().count());
            *distance <= (longest / 3).max(1)
        })
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, c)| c)
}

/// A help line: "did you mean `x`?" or, failing that, the list of valid names.
pub fn help_for(name: &str, candidates: &[&str], what: &str) -> String {
    if let Some(best) = did_you_mean(name, candidates.iter().copied()) {
        return format!("did you mean `{best}`?");
    }
    if candidates.is_empty() {
        return format!("no {what} is defined");
    }
    let list: Vec<String> = candidates.iter().map(|c| format!("`{c}`")).collect();
    format!("valid {what}s: {}", list.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggests_close_names_only() {
        let fields = ["num_generations", "beta", "epsilon"];
        assert_eq!(
            did_you_mean("num_generation", fields),
            Some("num_generations")
        );
        assert_eq!(did_you_mean("epsilom", fields), Some("epsilon"));
        assert_eq!(did_you_mean("temperature", fields), None);
    }
}
