//! `mplug sql` (one query, or an interactive prompt) and `mplug select` (freeze a sample list).

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;

use clap::Args;

use crate::query::freeze::freeze_query;
use crate::query::output::{OutputFormat, check_format_target, write_results};
use crate::query::{QuerySession, SqlPolicy, discover_datasets};
use crate::shards::sample_list::write_list;
use crate::text::BertTokenizer;
use crate::text::tokenizer::default_vocab_path;

/// Where datasets are looked for.
#[derive(Debug, Args)]
pub struct DataArgs {
    /// Dataset directory, or a folder searched (4 levels deep) for datasets; repeatable.
    #[arg(long, value_name = "ROOT", default_value = ".")]
    data: Vec<PathBuf>,
    /// BERT vocab for token_count() [default: $MPLUG_VOCAB, else ~/.cache/mplug/bert-base-uncased/vocab.txt]
    #[arg(long, value_name = "FILE")]
    vocab: Option<PathBuf>,
    /// Allow statements that write or register files (CREATE EXTERNAL TABLE, COPY, INSERT, SET).
    #[arg(long)]
    allow_write: bool,
    /// Memory a query's sorts, aggregates and joins may reserve (e.g. 4GiB); past it the query fails
    /// with "Resources exhausted" instead of taking the machine.
    #[arg(long, value_name = "BYTES", default_value = "4GiB", value_parser = super::parse_bytes)]
    memory_limit: u64,
    /// Stop a query that runs longer than this many seconds (0: no limit).
    #[arg(long, value_name = "S", default_value_t = 600.0)]
    timeout: f64,
    /// Run the queries on an Apache DataFusion Ballista cluster (`mplug ballista scheduler` and
    /// executors that see the datasets at the same paths) instead of in this process.
    #[arg(long, value_name = "df://HOST:PORT")]
    cluster: Option<String>,
}

impl DataArgs {
    fn session(&self) -> anyhow::Result<QuerySession> {
        let datasets = discover_datasets(&self.data)?;
        if datasets.is_empty() {
            eprintln!(
                "warning: no dataset (manifest.json) found under {:?}",
                self.data
            );
        }
        // token_count() is optional: without a vocab the function reports what is missing when called.
        let tokenizer = self
            .vocab
            .clone()
            .or_else(default_vocab_path)
            .filter(|p| p.exists())
            .and_then(|p| BertTokenizer::from_vocab_file(&p).ok())
            .map(Arc::new);
        let session = QuerySession::on_cluster(
            datasets,
            SqlPolicy {
                allow_write: self.allow_write,
                memory_limit: usize::try_from(self.memory_limit).ok(),
                timeout: std::time::Duration::try_from_secs_f64(self.timeout)
                    .ok()
                    .filter(|d| !d.is_zero()),
            },
            tokenizer,
            self.cluster.as_deref(),
        )?;
        for w in session.warnings() {
            eprintln!("warning: {w}");
        }
        Ok(session)
    }
}

/// `mplug sql`.
#[derive(Debug, Args)]
#[command(
    after_help = "Tables: one per dataset (named after it), plus `datasets`, `shards` and `rejects`.
Functions: hash_split(key, fraction), hash_unit(key), token_count(text), and DataFusion's own
(cardinality(captions), array_length, unnest, ...).

Examples:
  mplug sql --data data \"SELECT split, count(*) FROM coco GROUP BY split\"
  mplug sql --data data \"SELECT image_id FROM coco WHERE hash_split(image_id, 0.1)\" --format csv
  mplug sql --data data \"SELECT c, token_count(c) FROM (SELECT unnest(captions) AS c FROM coco) LIMIT 5\"
  mplug sql --data data          # interactive prompt; end statements with ';', \\q to quit"
)]
pub struct SqlArgs {
    /// The query. Without it, an interactive prompt starts (history in ~/.cache/mplug/sql_history).
    sql: Option<String>,
    #[command(flatten)]
    data: DataArgs,
    /// Output format.
    #[arg(long, value_enum, default_value = "table")]
    format: OutputFormat,
    /// Write results to FILE instead of stdout.
    #[arg(long, value_name = "FILE")]
    output: Option<PathBuf>,
}

pub fn run_sql(args: SqlArgs) -> anyhow::Result<()> {
    check_format_target(args.format, args.output.is_some())?;
    let session = args.data.session()?;
    match &args.sql {
        Some(sql) => run_one(&session, sql, args.format, args.output.as_deref()),
        None => interactive(&session),
    }
}

fn run_one(
    session: &QuerySession,
    sql: &str,
    format: OutputFormat,
    output: Option<&std::path::Path>,
) -> anyhow::Result<()> {
    let (schema, batches) = session.query(sql)?;
    match output {
        Some(path) => {
            let mut buf = Vec::new();
            write_results(format, &schema, &batches, &mut buf)?;
            crate::shards::commit::write_atomic(path, &buf)?;
        }
        None => {
            let stdout = std::io::stdout();
            let mut lock = stdout.lock();
            write_results(format, &schema, &batches, &mut lock)?;
            lock.flush()?;
        }
    }
    Ok(())
}

fn history_path() -> Option<PathBuf> {
    let home = std::env::var_os("HOME")?;
    let dir = PathBuf::from(home).join(".cache/mplug");
    std::fs::create_dir_all(&dir).ok()?;
    Some(dir.join("sql_history"))
}

fn interactive(session: &QuerySession) -> anyhow::Result<()> {
    let mut rl = rustyline::DefaultEditor::new()?;
    let history = history_path();
    if let Some(h) = &history {
        let _ = rl.load_history(h);
    }
    eprintln!(
        "mplug sql: {} dataset table(s) + datasets, shards, rejects. End statements with ';'. \\d lists tables, \\q quits.",
        session.datasets().len()
    );
    let mut buffer = String::new();
    loop {
        let prompt = if buffer.is_empty() {
            "mplug> "
        } else {
            "   ..> "
        };
        let line = match rl.readline(prompt) {
            Ok(l) => l,
            Err(rustyline::error::ReadlineError::Interrupted) => {
                buffer.clear();
                continue;
            }
            Err(rustyline::error::ReadlineError::Eof) => break,
            Err(e) => return Err(e.into()),
        };
        let trimmed = line.trim();
        if buffer.is_empty() {
            match trimmed {
                "" => continue,
                "\\q" | "quit" | "exit" => break,
                "\\d" => {
                    let _ = rl.add_history_entry(trimmed);
                    for d in session.datasets() {
                        println!(
                            "{}  ({} rows, {})",
                            d.table,
                            d.manifest.totals.samples_written,
                            d.dir.display()
                        );
                    }
                    println!("datasets, shards, rejects  (from the manifests)");
                    continue;
                }
                _ => {}
            }
        }
        buffer.push_str(&line);
        buffer.push('\n');
        if !trimmed.ends_with(';') {
            continue;
        }
        let sql = std::mem::take(&mut buffer);
        let _ = rl.add_history_entry(sql.trim());
        if let Err(e) = run_one(
            session,
            sql.trim().trim_end_matches(';'),
            OutputFormat::Table,
            None,
        ) {
            eprintln!("error: {e}");
            if let Some(h) = e
                .downcast_ref::<crate::Error>()
                .and_then(crate::Error::hint)
            {
                eprintln!("hint: {h}");
            }
        }
    }
    if let Some(h) = &history {
        let _ = rl.save_history(h);
    }
    Ok(())
}

/// `mplug select`.
#[derive(Debug, Args)]
pub struct SelectArgs {
    #[command(flatten)]
    data: DataArgs,
    /// The query: must return `image_id` (and `dataset` when several datasets are registered).
    #[arg(long)]
    sql: String,
    /// Where to write the sample list (JSON).
    #[arg(long, value_name = "LIST")]
    out: PathBuf,
}

pub fn run_select(args: SelectArgs) -> anyhow::Result<()> {
    let session = args.data.session()?;
    let list = freeze_query(&session, &args.sql)?;
    write_list(&list, &args.out)?;
    println!(
        "{}: {} samples from {} dataset(s); list blake3:{}",
        args.out.display(),
        list.count,
        list.datasets.len(),
        list.list_blake3
    );
    Ok(())
}
