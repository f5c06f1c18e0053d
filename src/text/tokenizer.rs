//! BERT uncased WordPiece tokenizer built from a `vocab.txt` with the `tokenizers` crate.
//!
//! Token ids are stored *without* special tokens: the loader adds the reference's `[CLS]` prefix (and
//! no trailing `[SEP]`, mPLUG's quirk) when it builds model inputs.

use std::path::Path;

use tokenizers::models::wordpiece::WordPiece;
use tokenizers::normalizers::bert::BertNormalizer;
use tokenizers::pre_tokenizers::bert::BertPreTokenizer;
use tokenizers::{AddedToken, Tokenizer};

use crate::error::{Error, Result};

/// Special tokens of bert-base-uncased, recognised inside input text as the reference does.
pub const SPECIAL_TOKENS: [&str; 5] = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"];

/// `[PAD]`'s id in the BERT uncased vocab. The ids below are the only definitions of the special
/// tokens: the loader, the objectives and generation use them, and loading a vocab checks them.
pub const PAD_ID: i64 = 0;
/// `[CLS]`'s id (also the decoder's start token).
pub const CLS_ID: i64 = 101;
/// `[SEP]`'s id (also the decoder's end token).
pub const SEP_ID: i64 = 102;
/// `[MASK]`'s id.
pub const MASK_ID: i64 = 103;

/// A WordPiece tokenizer equivalent to HF `BertTokenizer(vocab, do_lower_case=True)`.
pub struct BertTokenizer {
    inner: Tokenizer,
    vocab_blake3: String,
    vocab_size: usize,
}

impl std::fmt::Debug for BertTokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BertTokenizer")
            .field("vocab_blake3", &self.vocab_blake3())
            .finish()
    }
}

impl BertTokenizer {
    /// Loads the vocabulary file (one token per line, id = line number).
    pub fn from_vocab_file(path: &Path) -> Result<Self> {
        let bytes = fs_err::read(path).map_err(|e| {
            Error::input_caused(format!("Cannot read the vocab `{}`", path.display()), e)
                .with_hint("run scripts/setup.sh to install the BERT vocab, or pass --vocab FILE")
        })?;
        let vocab_size = bytes
            .split(|b| *b == b'\n')
            .filter(|l| !l.is_empty())
            .count();
        let path_str = path
            .to_str()
            .ok_or_else(|| Error::input("vocab path is not UTF-8"))?;
        let model = WordPiece::from_file(path_str)
            .unk_token("[UNK]".to_string())
            .build()
            .map_err(|e| Error::config("vocab", path, None, e))?;
        let mut inner = Tokenizer::new(model);
        // clean_text, handle_chinese_chars, strip_accents = None (follows lowercase), lowercase
        let internal = |e: tokenizers::Error| Error::internal_caused("tokenizer set-up failed", e);
        inner
            .with_normalizer(Some(BertNormalizer::new(true, true, None, true)))
            .map_err(internal)?;
        inner.with_pre_tokenizer(Some(BertPreTokenizer));
        let specials: Vec<AddedToken> = SPECIAL_TOKENS
            .iter()
            .map(|t| AddedToken::from(t.to_string(), true))
            .collect();
        inner.add_special_tokens(specials).map_err(internal)?;
        for t in SPECIAL_TOKENS {
            if inner.token_to_id(t).is_none() {
                return Err(Error::input(format!(
                    "vocab `{}` lacks the special token {t}; is it a BERT vocab?",
                    path.display()
                )));
            }
        }
        let fixed = [
            ("[PAD]", PAD_ID),
            ("[CLS]", CLS_ID),
            ("[SEP]", SEP_ID),
            ("[MASK]", MASK_ID),
        ];
        for (t, id) in fixed {
            let found = inner.token_to_id(t).map(i64::from);
            if found != Some(id) {
                return Err(Error::input_with_hint(
                    format!(
                        "vocab `{}` has {t} at id {found:?}; mplug's model and loader expect {id}",
                        path.display()
                    ),
                    "use the BERT uncased vocab (scripts/setup.sh installs it)",
                ));
            }
        }
        Ok(Self {
            inner,
            vocab_blake3: blake3::hash(&bytes).to_hex().to_string(),
            vocab_size,
        })
    }

    /// WordPiece ids of `text`, without special tokens.
    pub fn encode(&self, text: &str) -> Result<Vec<i32>> {
        let enc = self
            .inner
            .encode(text, false)
            .map_err(|e| Error::internal_caused(format!("tokenizer failed on {text:?}"), e))?;
        Ok(enc.get_ids().iter().map(|&id| id as i32).collect())
    }

    /// Id of a token (e.g. `[CLS]`).
    pub fn token_to_id(&self, token: &str) -> Option<u32> {
        self.inner.token_to_id(token)
    }

    /// The token of an id; `[UNK]` for an id outside the vocab (as the slow `BertTokenizer`).
    pub fn id_to_token(&self, id: i64) -> String {
        u32::try_from(id)
            .ok()
            .and_then(|id| self.inner.id_to_token(id))
            .unwrap_or_else(|| "[UNK]".to_string())
    }

    /// blake3 of the vocab file bytes.
    pub fn vocab_blake3(&self) -> &str {
        &self.vocab_blake3
    }

    /// Number of entries in the vocab.
    pub fn vocab_size(&self) -> usize {
        self.vocab_size
    }
}

/// Where the vocab is looked for when `--vocab` is not given: `$MPLUG_VOCAB`, then the set-up's
/// install location `~/.cache/mplug/bert-base-uncased/vocab.txt`.
pub fn default_vocab_path() -> Option<std::path::PathBuf> {
    if let Some(p) = std::env::var_os("MPLUG_VOCAB") {
        return Some(p.into());
    }
    let home = std::env::var_os("MPLUG_HOME")
        .map(std::path::PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".cache/mplug")))?;
    Some(home.join("bert-base-uncased/vocab.txt"))
}
