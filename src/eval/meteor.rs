//! METEOR 1.5 through its official jar, as pycocoevalcap runs it
//! (`java -jar -Xmx2G meteor-1.5.jar - - -stdio -l en -norm`): one `SCORE ||| refs… ||| hypothesis`
//! line per image returns its statistics, one `EVAL ||| stats…` line returns every image's score
//! and then the corpus score (computed by METEOR from pooled statistics).
//!
//! Not ported: exact METEOR needs its stemmer, WordNet synonyms and paraphrase table, which only the
//! jar carries. Without Java or the jar the metric is skipped with the reason.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};

use crate::error::{Error, Result};

/// Corpus METEOR and per-image values for `(hypothesis, references)` pairs of tokenised captions.
pub fn meteor(jar: &Path, pairs: &[(String, Vec<String>)]) -> Result<(f64, Vec<f64>)> {
    let dir = jar.parent().unwrap_or(Path::new("."));
    let mut child = Command::new("java")
        .args(["-jar", "-Xmx2G"])
        .arg(jar)
        .args(["-", "-", "-stdio", "-l", "en", "-norm"])
        .current_dir(dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| Error::input_caused("cannot start `java` for METEOR", e))?;
    let result = talk(&mut child, pairs);
    let _ = child.kill();
    let _ = child.wait();
    result
}

fn talk(
    child: &mut std::process::Child,
    pairs: &[(String, Vec<String>)],
) -> Result<(f64, Vec<f64>)> {
    let broken = |what: &str| Error::format(format!("METEOR jar: {what}"));
    let mut stdin = child.stdin.take().ok_or_else(|| broken("no stdin"))?;
    let mut stdout = BufReader::new(child.stdout.take().ok_or_else(|| broken("no stdout"))?);
    let mut line = String::new();
    let mut eval = String::from("EVAL");
    for (hyp, refs) in pairs {
        let hyp = hyp.replace("|||", "").replace("  ", " ");
        writeln!(stdin, "SCORE ||| {} ||| {hyp}", refs.join(" ||| "))?;
        stdin.flush()?;
        line.clear();
        if stdout.read_line(&mut line)? == 0 {
            return Err(broken("exited early (is the jar's data next to it?)"));
        }
        eval.push_str(" ||| ");
        eval.push_str(line.trim());
    }
    writeln!(stdin, "{eval}")?;
    stdin.flush()?;
    let mut read_score = || -> Result<f64> {
        line.clear();
        stdout.read_line(&mut line)?;
        line.trim()
            .parse()
            .map_err(|_| broken(&format!("expected a score, got `{}`", line.trim())))
    };
    let per: Vec<f64> = (0..pairs.len())
        .map(|_| read_score())
        .collect::<Result<_>>()?;
    let corpus = read_score()?;
    Ok((corpus, per))
}
