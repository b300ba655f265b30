//! Check (tests): the accuracy and format rewards against adversarial completions, each
//! with its exact expected score.
