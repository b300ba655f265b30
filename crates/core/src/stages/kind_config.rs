//! Parse → check: how a stage kind declares its config (`kind_config!`): one list of
//! fields, each annotated with what it is — an input, a reward map, a setting — from which
//! the struct a manifest writes, the kind's resolved settings, `resolve`, `inputs`,
//! `rewards` and `sequences` are generated, so that each fact about a field is written once.

/// Declares a stage kind's config and generates what follows from its fields:
///
/// ```text
/// kind_config! {
///     kind = "KIND", implementation = 1, trains, output = Output::Model, defaults = …;
///
///     /// `kind: KIND` — the schema's description.
///     pub struct KindStage {
///         /// Docs of each field (the schema's description).
///         #[serde(…)]                             // as serde reads the manifest, if needed
///         #[input(InputField::X, Need::Y)]        // marker, at most one, last
///         pub from: String,
///         …
///         /// Seed of …; defaults to the manifest's `seed`.
///         seed,
///     }
///     [training, generation, policy, resources]   // the shared groups (`stage_config!`)
///
///     /// Docs of the resolved settings.
///     resolved pub struct Kind;
/// }
/// ```
///
/// The first line is the kind's `StageConfig`, one fact at a time:
///
/// - `kind = "KIND"`: what `kind:` says (`KIND`).
/// - `implementation = N`: its `IMPLEMENTATION` (bumped whenever its output changes for the
///   same config).
/// - `trains` (`TRAINS`) or `runs_model` (`RUNS_MODEL`), for a kind that trains a model or
///   computes with one.
/// - `not_in_key = ["FIELD", …]`: its own fields left out of its cache key (`NOT_IN_KEY`).
/// - `output = OUTPUT`: what it produces, or `output_of = FUNCTION` where that depends on
///   the config or its inputs (`FUNCTION(&config, inputs)`).
/// - `defaults = DEFAULTS`: its `builtin_defaults()`, where the kind has its own.
///
/// Its own rules are its `KindChecks` impl, beside the macro.
///
/// The config struct is `stage_config!`'s (the shared groups spliced in) with the derives
/// every kind's config has, and unknown keys denied. A field's marker says what it is:
///
/// - `#[input(FIELD, NEED)]`: a reference (`String`, or `Option<String>` when optional) to
///   another stage or declaration; `inputs()` lists these in field order. Inputs reach the
///   runner as inputs, so they are not settings.
/// - `#[rewards(ROLE)]`: a map of reward names to numbers (`rewards()` lists these), also a
///   setting.
/// - none: a setting, copied as written into the resolved struct, with its docs.
/// - `#[sequences(window)]`: a setting, the length of the windows the kind feeds its
///   model (`sequences()`, which check bounds by the model's context; a kind with the
///   generation group feeds prompts and completions instead).
/// - `#[resolved(serde(…))]`: a setting, with that serde attribute in the resolved struct.
/// - `#[resolved(as NAME)]`: a setting, called `NAME` in the resolved struct.
/// - `#[resolved(NAME: TYPE = FUNCTION)]`: resolves to `NAME`, computed by
///   `FUNCTION(&config)` (e.g. from this field and others marked `skip`).
/// - `#[resolved(skip)]`: read only by another field's `FUNCTION`.
/// - `#[resolved(required)]`: an `Option<T>` that check fills; resolves to `T`, and is
///   `Unset` if nothing filled it.
///
/// `seed,` (with its docs, which say what the seed decides in this kind) is the stage's
/// seed: `seed: Option<u64>`, left out of the manifest when unset and `required`, as check
/// fills it from the manifest's `seed`.
///
/// The resolved struct holds the settings in field order, then each shared group's
/// resolved settings (`training`, `generation`, `policy`), then the `required` fields.
macro_rules! kind_config {
    (
        $($fact:ident $(= $value:expr)?),+ ;
        $(#[doc = $doc:literal])*
        pub struct $name:ident { $($fields:tt)* }
        [$($group:ident),* $(,)?]
        $(#[doc = $resolved_doc:literal])*
        resolved pub struct $resolved:ident;
    ) => {
        impl $crate::stages::StageConfig for $name {
            $( $crate::stages::kind_config::kind_config!(@fact $fact $(= $value)?); )+
        }

        $crate::stages::kind_config::kind_config!(@field
            { [$(#[doc = $doc])*] $name [$($group)*] [$(#[doc = $resolved_doc])*] $resolved }
            [] [] [] [] []
            $($fields)*
        );
    };

    // The kind's `StageConfig`, a fact at a time.
    (@fact kind = $kind:expr) => {
        const KIND: &'static str = $kind;
    };
    (@fact implementation = $implementation:expr) => {
        const IMPLEMENTATION: u32 = $implementation;
    };
    (@fact trains) => {
        const TRAINS: bool = true;
    };
    (@fact runs_model) => {
        const RUNS_MODEL: bool = true;
    };
    (@fact not_in_key = $fields:expr) => {
        const NOT_IN_KEY: &'static [&'static str] = &$fields;
    };
    (@fact output = $output:expr) => {
        fn output(&self, _inputs: &[$crate::stages::Output]) -> $crate::stages::Output {
            $output
        }
    };
    (@fact output_of = $function:expr) => {
        fn output(&self, inputs: &[$crate::stages::Output]) -> $crate::stages::Output {
            $function(self, inputs)
        }
    };
    (@fact defaults = $defaults:expr) => {
        fn builtin_defaults() -> $crate::manifest::Defaults {
            $defaults
        }
    };

    // The stage's seed: an optional field check fills from the manifest's `seed`.
    (@field $head:tt $config:tt $inputs:tt $rewards:tt $own:tt $required:tt
        $(#[doc = $doc:literal])*
        seed, $($rest:tt)*
    ) => {
        $crate::stages::kind_config::kind_config!(@field $head $config $inputs $rewards $own
            $required
            $(#[doc = $doc])*
            #[serde(default, skip_serializing_if = "Option::is_none")]
            #[resolved(required)]
            pub seed: Option<u64>,
            $($rest)*
        );
    };

    // One field at a time; the lists after the head are: the config's fields, the inputs,
    // the reward maps, the resolved settings, the required fields.
    (@field $head:tt [$($config:tt)*] [$($inputs:tt)*] $rewards:tt $own:tt $required:tt
        $(#[doc = $doc:literal])* $(#[serde $serde:tt])*
        #[input($input:expr, $need:expr)]
        pub $field:ident : $ty:ty, $($rest:tt)*
    ) => {
        $crate::stages::kind_config::kind_config!(@field $head
            [$($config)* $(#[doc = $doc])* $(#[serde $serde])* pub $field: $ty,]
            [$($inputs)* ($input, $need, $field)]
            $rewards $own $required
            $($rest)*
        );
    };
    (@field $head:tt [$($config:tt)*] $inputs:tt [$($rewards:tt)*] [$($own:tt)*] $required:tt
        $(#[doc = $doc:literal])* $(#[serde $serde:tt])*
        #[rewards($role:expr)]
        pub $field:ident : $ty:ty, $($rest:tt)*
    ) => {
        $crate::stages::kind_config::kind_config!(@field $head
            [$($config)* $(#[doc = $doc])* $(#[serde $serde])* pub $field: $ty,]
            $inputs
            [$($rewards)* ($role, $field)]
            [$($own)* { [$(#[doc = $doc])*] $field: $ty = copy $field }]
            $required
            $($rest)*
        );
    };
    (@field $head:tt [$($config:tt)*] $inputs:tt $rewards:tt $own:tt [$($required:tt)*]
        $(#[doc = $doc:literal])* $(#[serde $serde:tt])*
        #[resolved(required)]
        pub $field:ident : Option<$ty:ty>, $($rest:tt)*
    ) => {
        $crate::stages::kind_config::kind_config!(@field $head
            [$($config)* $(#[doc = $doc])* $(#[serde $serde])* pub $field: Option<$ty>,]
            $inputs $rewards $own
            [$($required)* { [$(#[doc = $doc])*] $field: $ty = required $field }]
            $($rest)*
        );
    };
    (@field $head:tt [$($config:tt)*] $inputs:tt $rewards:tt $own:tt $required:tt
        $(#[doc = $doc:literal])* $(#[serde $serde:tt])*
        #[resolved(skip)]
        pub $field:ident : $ty:ty, $($rest:tt)*
    ) => {
        $crate::stages::kind_config::kind_config!(@field $head
            [$($config)* $(#[doc = $doc])* $(#[serde $serde])* pub $field: $ty,]
            $inputs $rewards $own $required
            $($rest)*
        );
    };
    (@field $head:tt [$($config:tt)*] $inputs:tt $rewards:tt [$($own:tt)*] $required:tt
        $(#[doc = $doc:literal])* $(#[serde $serde:tt])*
        #[resolved(as $as:ident)]
        pub $field:ident : $ty:ty, $($rest:tt)*
    ) => {
        $crate::stages::kind_config::kind_config!(@field $head
            [$($config)* $(#[doc = $doc])* $(#[serde $serde])* pub $field: $ty,]
            $inputs $rewards
            [$($own)* { [$(#[doc = $doc])*] $as: $ty = copy $field }]
            $required
            $($rest)*
        );
    };
    (@field $head:tt [$($config:tt)*] $inputs:tt $rewards:tt [$($own:tt)*] $required:tt
        $(#[doc = $doc:literal])* $(#[serde $serde:tt])*
        #[resolved(serde $resolved_serde:tt)]
        pub $field:ident : $ty:ty, $($rest:tt)*
    ) => {
        $crate::stages::kind_config::kind_config!(@field $head
            [$($config)* $(#[doc = $doc])* $(#[serde $serde])* pub $field: $ty,]
            $inputs $rewards
            [$($own)* { [$(#[doc = $doc])* #[serde $resolved_serde]] $field: $ty = copy $field }]
            $required
            $($rest)*
        );
    };
    (@field $head:tt [$($config:tt)*] $inputs:tt $rewards:tt [$($own:tt)*] $required:tt
        $(#[doc = $doc:literal])* $(#[serde $serde:tt])*
        #[sequences(window)]
        pub $field:ident : $ty:ty, $($rest:tt)*
    ) => {
        $crate::stages::kind_config::kind_config!(@field $head
            [$($config)* $(#[doc = $doc])* $(#[serde $serde])* pub $field: $ty,]
            $inputs $rewards
            [$($own)* { [$(#[doc = $doc])*] $field: $ty = window $field }]
            $required
            $($rest)*
        );
    };
    (@field $head:tt [$($config:tt)*] $inputs:tt $rewards:tt [$($own:tt)*] $required:tt
        $(#[doc = $doc:literal])* $(#[serde $serde:tt])*
        #[resolved($as:ident : $as_ty:ty = $function:path)]
        pub $field:ident : $ty:ty, $($rest:tt)*
    ) => {
        $crate::stages::kind_config::kind_config!(@field $head
            [$($config)* $(#[doc = $doc])* $(#[serde $serde])* pub $field: $ty,]
            $inputs $rewards
            [$($own)* { [$(#[doc = $doc])*] $as: $as_ty = call ($function) }]
            $required
            $($rest)*
        );
    };
    (@field $head:tt [$($config:tt)*] $inputs:tt $rewards:tt [$($own:tt)*] $required:tt
        $(#[doc = $doc:literal])* $(#[serde $serde:tt])*
        pub $field:ident : $ty:ty, $($rest:tt)*
    ) => {
        $crate::stages::kind_config::kind_config!(@field $head
            [$($config)* $(#[doc = $doc])* $(#[serde $serde])* pub $field: $ty,]
            $inputs $rewards
            [$($own)* { [$(#[doc = $doc])*] $field: $ty = copy $field }]
            $required
            $($rest)*
        );
    };
    (@field { $docs:tt $name:ident [$($group:ident)*] $resolved_docs:tt $resolved:ident }
        $config:tt $inputs:tt $rewards:tt $own:tt $required:tt
    ) => {
        $crate::stages::kind_config::kind_config!(@groups
            { $docs $name [$($group)*] $resolved_docs $resolved }
            $config $inputs $rewards $own $required [] [$($group)*]
        );
    };

    // The shared groups' resolved settings, after the kind's own. Where a stage runs is
    // not a setting of what it computes.
    (@groups $head:tt $config:tt $inputs:tt $rewards:tt $own:tt $required:tt
        $settings:tt [resources $($rest:ident)*]
    ) => {
        $crate::stages::kind_config::kind_config!(@groups $head $config $inputs $rewards $own
            $required $settings [$($rest)*]
        );
    };
    (@groups $head:tt $config:tt $inputs:tt $rewards:tt $own:tt $required:tt
        [$($settings:tt)*] [$group:ident $($rest:ident)*]
    ) => {
        $crate::stages::kind_config::kind_config!(@groups $head $config $inputs $rewards $own
            $required
            [$($settings)* {
                [] $group: $crate::stages::kind_config::kind_config!(@group_settings $group)
                    = group $group
            }]
            [$($rest)*]
        );
    };
    (@groups $head:tt $config:tt $inputs:tt $rewards:tt [$($own:tt)*] [$($required:tt)*]
        [$($settings:tt)*] []
    ) => {
        $crate::stages::kind_config::kind_config!(@emit $head $config $inputs $rewards
            [$($own)* $($settings)* $($required)*]
        );
    };

    (@emit { [$($doc:tt)*] $name:ident [$($group:ident)*] [$($resolved_doc:tt)*] $resolved:ident }
        [$($config:tt)*]
        [$(($input:expr, $need:expr, $input_field:ident))*]
        [$(($role:expr, $reward_field:ident))*]
        [$({ [$($attr:tt)*] $setting:ident : $setting_ty:ty = $how:ident $source:tt })*]
    ) => {
        // The group macros call their generator by name, where the config is declared.
        use $crate::manifest::params::stage_config;

        stage_config! {
            $($doc)*
            #[derive(Debug, Clone, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
            #[serde(deny_unknown_fields)]
            pub struct $name { $($config)* }
            [$($group),*]
        }

        $($resolved_doc)*
        #[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
        pub struct $resolved {
            $( $($attr)* pub $setting: $setting_ty, )*
        }

        impl $crate::stages::StageFields for $name {
            type Resolved = $resolved;

            fn inputs(&self) -> Vec<$crate::stages::Input<'_>> {
                let mut inputs = Vec::new();
                $( inputs.extend($crate::stages::Input::declared($input, &self.$input_field, $need)); )*
                inputs
            }

            fn rewards(&self) -> Vec<$crate::stages::RewardRefs<'_>> {
                vec![$(
                    $crate::stages::RewardRefs::new(stringify!($reward_field), &self.$reward_field, $role),
                )*]
            }

            fn sequences(resolved: &$resolved) -> Option<$crate::stages::Sequences<'_>> {
                let _ = resolved; // read only by a kind that feeds its model sequences
                None $(.or($crate::stages::kind_config::kind_config!(@sequences resolved $how $setting)))*
            }

            // Settings are copied whatever their type, `Copy` or not.
            #[allow(clippy::clone_on_copy)]
            fn resolve(&self) -> Result<$resolved, $crate::stages::Unset> {
                Ok($resolved {
                    $( $setting: $crate::stages::kind_config::kind_config!(@value self $how $source), )*
                })
            }
        }
    };

    // The resolved settings of a shared group.
    (@group_settings training) => { $crate::stages::TrainingSettings };
    (@group_settings generation) => { $crate::stages::GenerationSettings };
    (@group_settings policy) => { $crate::stages::PolicySettings };

    // How a resolved setting gets its value.
    (@value $config:ident copy $field:ident) => {
        $config.$field.clone()
    };
    (@value $config:ident window $field:ident) => {
        $config.$field.clone()
    };
    (@value $config:ident required $field:ident) => {
        $crate::stages::required($config.$field.clone(), stringify!($field))?
    };
    (@value $config:ident call ($function:path)) => {
        $function($config)
    };
    (@value $config:ident group $group:ident) => {
        $config.shared().$group()?
    };

    // What a resolved setting says of the sequences a stage feeds its model: a stage that
    // generates feeds prompts and completions; one with a window length, windows of it.
    (@sequences $resolved:ident group generation) => {
        Some($crate::stages::Sequences::Generated(&$resolved.generation))
    };
    (@sequences $resolved:ident window $setting:ident) => {
        Some($crate::stages::Sequences::Window($resolved.$setting))
    };
    (@sequences $resolved:ident $how:ident $setting:ident) => {
        None
    };
}
pub(crate) use kind_config;

/// A field's default of `N` (`#[serde(default = "default_usize::<N>")]`: serde names a
/// function).
pub(super) fn default_usize<const N: usize>() -> usize {
    N
}

/// A field's default of `true`.
pub(super) fn default_true() -> bool {
    true
}
