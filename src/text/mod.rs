//! Text stages: the reference's caption normalisation and BERT WordPiece tokenisation.
//!
//! Flow position: `sources` yield raw captions → [`normalize`] → [`tokenizer`] → token-id lists in shards.

pub mod decode;
pub mod normalize;
pub mod tokenizer;

pub use normalize::{TextNormalization, pre_caption, pre_question};
pub use tokenizer::BertTokenizer;
