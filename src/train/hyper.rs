//! Execute (training): the resolved optimisation settings of a training stage (check has
//! filled every default, so a missing value here is a bug reported as a stage failure).

use crate::exec::StageError;
use crate::manifest::LrScheduler;

/// AdamW, schedule, batch and length settings shared by every training kind.
#[derive(Debug, Clone)]
pub struct TrainingHyper {
    pub learning_rate: f64,
    pub scheduler: LrScheduler,
    pub warmup_ratio: f64,
    pub weight_decay: f64,
    pub adam_beta1: f64,
    pub adam_beta2: f64,
    pub max_grad_norm: f64,
    pub batch_size: usize,
    pub accumulation: usize,
    pub max_steps: Option<u64>,
    pub epochs: f64,
    pub logging_steps: u64,
    pub save_steps: u64,
}

fn resolved<T>(value: Option<T>, field: &str) -> Result<T, StageError> {
    value
        .ok_or_else(|| StageError::Failed(format!("internal: `{field}` was not resolved by check")))
}

/// Builds `TrainingHyper` from a stage config that has the `training` parameter group.
macro_rules! training_hyper {
    ($config:expr) => {
        $crate::train::TrainingHyper::new(
            $config.learning_rate,
            $config.lr_scheduler_type,
            $config.warmup_ratio,
            $config.weight_decay,
            $config.adam_beta1,
            $config.adam_beta2,
            $config.max_grad_norm,
            $config.per_device_train_batch_size,
            $config.gradient_accumulation_steps,
            $config.max_steps,
            $config.num_train_epochs,
            $config.logging_steps,
            $config.save_steps,
        )
    };
}
pub(crate) use training_hyper;

impl TrainingHyper {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        learning_rate: Option<f64>,
        scheduler: Option<LrScheduler>,
        warmup_ratio: Option<f64>,
        weight_decay: Option<f64>,
        adam_beta1: Option<f64>,
        adam_beta2: Option<f64>,
        max_grad_norm: Option<f64>,
        batch_size: Option<usize>,
        accumulation: Option<usize>,
        max_steps: Option<u64>,
        epochs: Option<f64>,
        logging_steps: Option<u64>,
        save_steps: Option<u64>,
    ) -> Result<Self, StageError> {
        Ok(Self {
            learning_rate: resolved(learning_rate, "learning_rate")?,
            scheduler: resolved(scheduler, "lr_scheduler_type")?,
            warmup_ratio: resolved(warmup_ratio, "warmup_ratio")?,
            weight_decay: resolved(weight_decay, "weight_decay")?,
            adam_beta1: resolved(adam_beta1, "adam_beta1")?,
            adam_beta2: resolved(adam_beta2, "adam_beta2")?,
            max_grad_norm: resolved(max_grad_norm, "max_grad_norm")?,
            batch_size: resolved(batch_size, "per_device_train_batch_size")?.max(1),
            accumulation: resolved(accumulation, "gradient_accumulation_steps")?.max(1),
            max_steps,
            epochs: resolved(epochs, "num_train_epochs")?,
            logging_steps: resolved(logging_steps, "logging_steps")?.max(1),
            save_steps: resolved(save_steps, "save_steps")?.max(1),
        })
    }

    /// Optimizer steps for `examples` training examples: `max_steps`, else epochs over
    /// the data.
    pub fn total_steps(&self, examples: usize) -> u64 {
        if let Some(steps) = self.max_steps {
            return steps;
        }
        let per_step = (self.batch_size * self.accumulation) as f64;
        ((examples as f64 * self.epochs) / per_step).ceil().max(1.0) as u64
    }
}

/// Builds `SamplingParams` from a stage config that has the `generation` parameter group.
macro_rules! sampling_params {
    ($config:expr, $seed:expr) => {
        $crate::train::sampling_params_from(
            $config.max_completion_length,
            $config.temperature,
            $config.top_p,
            $config.top_k,
            $config.stop.clone(),
            $seed,
        )
    };
}
pub(crate) use sampling_params;

/// Sampling settings from resolved generation fields.
pub fn sampling_params_from(
    max_completion_length: Option<usize>,
    temperature: Option<f64>,
    top_p: Option<f64>,
    top_k: Option<usize>,
    stop: Option<Vec<String>>,
    seed: u64,
) -> Result<crate::model::SamplingParams, StageError> {
    Ok(crate::model::SamplingParams {
        max_new_tokens: resolved(max_completion_length, "max_completion_length")?,
        temperature: resolved(temperature, "temperature")? as f32,
        top_p: resolved(top_p, "top_p")? as f32,
        top_k: top_k.unwrap_or(0),
        seed,
        stop: stop.unwrap_or_default(),
    })
}
