//! Execute (the `dataset` stage): a worked solution as sentences, each written in English
//! and in Chinese, with its final answer — rendered in the R1 format
//! `<think> … </think> <answer> … </answer>`, or, for a noisy corpus, with its reasoning in
//! mixed languages or without the format (see [`super::noise`]).

/// One sentence of reasoning, in both languages a corpus may use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sentence {
    pub en: String,
    pub zh: String,
}

/// How a solution is laid out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// `<think> reasoning </think> <answer> answer </answer>`.
    Tagged,
    /// `<think> reasoning </think> The answer is answer.`: no `<answer>` tags.
    UntaggedAnswer,
    /// `<think> reasoning The answer is answer.`: the reasoning is never closed.
    UnclosedThink,
}

/// A worked solution: reasoning sentences and the final answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkedSolution {
    pub sentences: Vec<Sentence>,
    /// Which of `sentences` are the worked steps (the rest state the goal and the result).
    pub steps: std::ops::Range<usize>,
    pub answer: String,
}

impl WorkedSolution {
    /// The same solution with its worked steps left out: the result stated at once.
    pub fn without_steps(&self) -> Self {
        let sentences = self
            .sentences
            .iter()
            .enumerate()
            .filter(|(i, _)| !self.steps.contains(i))
            .map(|(_, s)| s.clone())
            .collect();
        Self {
            sentences,
            steps: 0..0,
            answer: self.answer.clone(),
        }
    }

    /// The clean rendering: English reasoning in the R1 format.
    pub fn render(&self) -> String {
        self.render_with(Layout::Tagged, &[])
    }

    /// Renders with `layout`; sentence `i` is in Chinese when `chinese[i]` is true (missing
    /// entries are English).
    pub fn render_with(&self, layout: Layout, chinese: &[bool]) -> String {
        let reasoning: Vec<&str> = self
            .sentences
            .iter()
            .enumerate()
            .map(|(i, s)| {
                if chinese.get(i).copied().unwrap_or(false) {
                    s.zh.as_str()
                } else {
                    s.en.as_str()
                }
            })
            .collect();
        let reasoning = reasoning.join(" ");
        let answer = &self.answer;
        match layout {
            Layout::Tagged => format!("<think> {reasoning} </think> <answer> {answer} </answer>"),
            Layout::UntaggedAnswer => {
                format!("<think> {reasoning} </think> The answer is {answer}.")
            }
            Layout::UnclosedThink => format!("<think> {reasoning} The answer is {answer}."),
        }
    }
}

#[cfg(test)]
impl WorkedSolution {
    /// 12 + 30 = 42 in one step and its conclusion, in both languages: the solution the
    /// tests render and write flaws into.
    pub(crate) fn example() -> Self {
        Self {
            sentences: vec![
                Sentence {
                    en: "12 + 30 = 42.".into(),
                    zh: "12 加 30 得 42。".into(),
                },
                Sentence {
                    en: "So 12 + 30 = 42.".into(),
                    zh: "所以 12 + 30 = 42。".into(),
                },
            ],
            steps: 0..1,
            answer: "42".into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn without_steps_keeps_the_result() {
        assert_eq!(
            WorkedSolution::example().without_steps().render(),
            "<think> So 12 + 30 = 42. </think> <answer> 42 </answer>"
        );
    }

    #[test]
    fn layouts_and_languages() {
        let s = WorkedSolution::example();
        assert_eq!(
            s.render(),
            "<think> 12 + 30 = 42. So 12 + 30 = 42. </think> <answer> 42 </answer>"
        );
        assert_eq!(
            s.render_with(Layout::UntaggedAnswer, &[false, true]),
            "<think> 12 + 30 = 42. 所以 12 + 30 = 42。 </think> The answer is 42."
        );
        assert_eq!(
            s.render_with(Layout::UnclosedThink, &[true]),
            "<think> 12 加 30 得 42。 So 12 + 30 = 42. The answer is 42."
        );
    }
}
