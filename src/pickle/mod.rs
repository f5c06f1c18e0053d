//! A safe reader for Python pickles (protocols 0–5 as written by `pickle`/`torch.save`).
//!
//! Written by hand because no maintained crate reads *torch* pickles without executing or rejecting
//! their globals: this VM never calls anything. A `GLOBAL` becomes a [`Value::Global`] name, and
//! `REDUCE`/`NEWOBJ`/`BUILD` on it become a [`Value::Object`] that records the callable, its arguments
//! and its state. The few constructors whose meaning we need are interpreted structurally
//! (`collections.OrderedDict` → dict, `torch._utils._rebuild_tensor_v2` → a tensor reference; see
//! [`torch`]). Used for PyTorch checkpoints (`mplug convert`) and the RefCOCO `refs(*).p` files.

pub mod torch;
pub mod writer;

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

/// A shared, mutable list or dict (pickle memoises objects and mutates them afterwards).
pub type Shared<T> = Rc<RefCell<T>>;

/// A pickled value.
#[derive(Debug, Clone)]
pub enum Value {
    /// `None`.
    None,
    /// `True` / `False`.
    Bool(bool),
    /// An int that fits i64.
    Int(i64),
    /// A Python int too large for i64, as little-endian two's complement bytes.
    BigInt(Vec<u8>),
    /// A float.
    Float(f64),
    /// A str (Python 2 `str` decoded as Latin-1).
    Str(String),
    /// bytes / bytearray.
    Bytes(Vec<u8>),
    /// A list or set.
    List(Shared<Vec<Value>>),
    /// A tuple.
    Tuple(Vec<Value>),
    /// A dict, in insertion order.
    Dict(Shared<Vec<(Value, Value)>>),
    /// A reference to `module.name` (never resolved to code).
    Global(String, String),
    /// The result of calling a global: `callable(*args)` plus any `__setstate__` state.
    Object {
        /// `module.name` of the callable.
        class: (String, String),
        /// The arguments (a tuple).
        args: Box<Value>,
        /// State set by `BUILD`.
        state: Option<Box<Value>>,
    },
    /// A persistent id (torch storages).
    PersistentId(Box<Value>),
    /// A torch tensor reference (see [`torch::TensorRef`]).
    Tensor(torch::TensorRef),
}

impl Value {
    /// The string, if this is a str.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }

    /// The integer, if this is an int or bool.
    pub fn as_int(&self) -> Option<i64> {
        match self {
            Value::Int(i) => Some(*i),
            Value::Bool(b) => Some(*b as i64),
            _ => None,
        }
    }

    /// Items of a list or tuple.
    pub fn as_items(&self) -> Option<Vec<Value>> {
        match self {
            Value::List(l) => Some(l.borrow().clone()),
            Value::Tuple(t) => Some(t.clone()),
            _ => None,
        }
    }

    /// Entries of a dict.
    pub fn as_dict(&self) -> Option<Vec<(Value, Value)>> {
        match self {
            Value::Dict(d) => Some(d.borrow().clone()),
            _ => None,
        }
    }

    /// Looks up a str key in a dict.
    pub fn get(&self, key: &str) -> Option<Value> {
        match self {
            Value::Dict(d) => d
                .borrow()
                .iter()
                .find(|(k, _)| k.as_str() == Some(key))
                .map(|(_, v)| v.clone()),
            _ => None,
        }
    }

    /// A short type name for error messages.
    pub fn type_name(&self) -> String {
        match self {
            Value::None => "None".into(),
            Value::Bool(_) => "bool".into(),
            Value::Int(_) | Value::BigInt(_) => "int".into(),
            Value::Float(_) => "float".into(),
            Value::Str(_) => "str".into(),
            Value::Bytes(_) => "bytes".into(),
            Value::List(_) => "list".into(),
            Value::Tuple(_) => "tuple".into(),
            Value::Dict(_) => "dict".into(),
            Value::Global(m, n) => format!("global {m}.{n}"),
            Value::Object { class, .. } => format!("{}.{} object", class.0, class.1),
            Value::PersistentId(_) => "persistent id".into(),
            Value::Tensor(_) => "tensor".into(),
        }
    }
}

/// Why a pickle could not be read.
#[derive(Debug, thiserror::Error)]
pub enum PickleError {
    /// Input ended inside an opcode.
    #[error("pickle truncated at byte {0}")]
    Truncated(usize),
    /// An opcode we do not implement.
    #[error("unsupported pickle opcode 0x{op:02x} at byte {at}")]
    Opcode {
        /// The opcode.
        op: u8,
        /// Its offset.
        at: usize,
    },
    /// A malformed stream (stack underflow, bad memo index, wrong operand types…).
    #[error("malformed pickle at byte {at}: {message}")]
    Malformed {
        /// Offset of the opcode.
        at: usize,
        /// What is wrong.
        message: String,
    },
}

/// Deepest nesting accepted. Python's own pickler recurses per level and stops at its recursion limit
/// (1000 by default), so a real file is never deeper; a deeper one is built by hand to exhaust a stack.
pub const MAX_DEPTH: usize = 1000;

impl Drop for Value {
    /// Iterative, so that dropping a deeply nested value cannot overflow the stack: children are moved
    /// into a work list instead of being dropped recursively. A list or dict still shared elsewhere is
    /// only released (its count drops), never emptied.
    fn drop(&mut self) {
        let mut work = Vec::new();
        take_children(self, &mut work);
        while let Some(mut v) = work.pop() {
            take_children(&mut v, &mut work);
        }
    }
}

/// Moves `v`'s directly owned children into `work`, leaving `v` a leaf.
fn take_children(v: &mut Value, work: &mut Vec<Value>) {
    match v {
        Value::Tuple(items) => work.append(items),
        Value::List(l) => {
            if let Some(cell) = Rc::get_mut(l) {
                work.append(cell.get_mut());
            }
        }
        Value::Dict(d) => {
            if let Some(cell) = Rc::get_mut(d) {
                for (k, v) in cell.get_mut().drain(..) {
                    work.push(k);
                    work.push(v);
                }
            }
        }
        Value::Object { args, state, .. } => {
            work.push(std::mem::replace(&mut **args, Value::None));
            if let Some(s) = state.take() {
                work.push(*s);
            }
        }
        Value::PersistentId(inner) => work.push(std::mem::replace(&mut **inner, Value::None)),
        _ => {}
    }
}

/// Hook for constructors the caller understands (e.g. torch tensors); returns `None` to fall back to
/// a generic [`Value::Object`].
pub type Reducer<'a> = dyn FnMut(&str, &str, &Value) -> Option<Value> + 'a;

/// Reads one pickle from `data`. `reduce` may interpret calls of known globals.
///
/// Hostile input is an error, never an abort: nesting deeper than [`MAX_DEPTH`] (or a list that
/// contains itself) is refused, and so is a stream whose memo copies would materialise more than
/// [`Machine::budget`] bytes (a few hundred bytes can otherwise double a tuple through the memo until
/// memory runs out).
pub fn load(data: &[u8], reduce: &mut Reducer<'_>) -> Result<Value, PickleError> {
    let value = Machine {
        data,
        pos: 0,
        stack: Vec::new(),
        marks: Vec::new(),
        memo: HashMap::new(),
        copied: 0,
    }
    .run(reduce)?;
    let mut heights = HashMap::new();
    if height(&value, 0, &mut heights).is_none() {
        return Err(PickleError::Malformed {
            at: data.len(),
            message: format!(
                "nesting deeper than {MAX_DEPTH} levels, or a list or dict that contains itself"
            ),
        });
    }
    Ok(value)
}

/// The nesting height of `v` (a leaf is 0), or `None` past [`MAX_DEPTH`]. The recursion is bounded
/// by that limit, and shared lists/dicts are measured once (`heights`, by address), so a DAG that
/// reuses a list at every level costs linear time; a cycle never finishes a height and runs into the
/// limit.
fn height(v: &Value, depth: usize, heights: &mut HashMap<usize, usize>) -> Option<usize> {
    if depth > MAX_DEPTH {
        return None;
    }
    let shared = match v {
        Value::List(l) => Some(Rc::as_ptr(l) as *const () as usize),
        Value::Dict(d) => Some(Rc::as_ptr(d) as *const () as usize),
        _ => None,
    };
    if let Some(h) = shared.and_then(|p| heights.get(&p)) {
        return (depth + h <= MAX_DEPTH).then_some(*h);
    }
    let mut below = 0;
    let mut visit = |c: &Value, heights: &mut HashMap<usize, usize>| -> Option<()> {
        below = below.max(1 + height(c, depth + 1, heights)?);
        Some(())
    };
    match v {
        Value::Tuple(items) => items.iter().try_for_each(|c| visit(c, heights))?,
        Value::List(l) => l.borrow().iter().try_for_each(|c| visit(c, heights))?,
        Value::Dict(d) => d
            .borrow()
            .iter()
            .try_for_each(|(k, c)| visit(k, heights).and_then(|_| visit(c, heights)))?,
        Value::Object { args, state, .. } => {
            visit(args, heights)?;
            if let Some(s) = state {
                visit(s, heights)?;
            }
        }
        Value::PersistentId(inner) => visit(inner, heights)?,
        _ => {}
    }
    if let Some(p) = shared {
        heights.insert(p, below);
    }
    Some(below)
}

/// Bytes a deep copy of `v` allocates (lists and dicts are shared, so they cost one node), or
/// `None` when it nests deeper than [`MAX_DEPTH`]: checked before every memo copy, since `clone`
/// recurses.
fn copy_cost(v: &Value, depth: usize) -> Option<usize> {
    if depth > MAX_DEPTH {
        return None;
    }
    let node = std::mem::size_of::<Value>();
    Some(match v {
        Value::Str(s) => node + s.len(),
        Value::Bytes(b) | Value::BigInt(b) => node + b.len(),
        Value::Tuple(items) => items
            .iter()
            .try_fold(node, |sum, c| Some(sum + copy_cost(c, depth + 1)?))?,
        Value::Object { class, args, state } => {
            let state = match state {
                Some(s) => copy_cost(s, depth + 1)?,
                None => 0,
            };
            node + class.0.len() + class.1.len() + copy_cost(args, depth + 1)? + state
        }
        Value::PersistentId(inner) => node + copy_cost(inner, depth + 1)?,
        Value::Global(m, n) => node + m.len() + n.len(),
        _ => node,
    })
}

/// Reads a pickle with no special constructors (dicts, lists, scalars; OrderedDict as dict).
pub fn load_plain(data: &[u8]) -> Result<Value, PickleError> {
    load(data, &mut |_, _, _| None)
}

struct Machine<'a> {
    data: &'a [u8],
    pos: usize,
    stack: Vec<Value>,
    marks: Vec<usize>,
    memo: HashMap<u64, Value>,
    /// Bytes allocated so far by memo and DUP copies.
    copied: usize,
}

impl<'a> Machine<'a> {
    /// Most bytes the memo and DUP copies may allocate: 64 MiB or 16 bytes per input byte, whichever
    /// is more. Real pickles copy little (memo GETs of shared objects, which are cheap); a memo bomb
    /// copies ever larger tuples.
    fn budget(&self) -> usize {
        (64 << 20).max(self.data.len().saturating_mul(16))
    }

    /// A copy of `v` for the memo or DUP, charged against [`Machine::budget`].
    fn copy(&mut self, v: &Value, at: usize) -> Result<Value, PickleError> {
        let cost = copy_cost(v, 0)
            .ok_or_else(|| self.bad(at, format!("nesting deeper than {MAX_DEPTH} levels")))?;
        self.copied = self.copied.saturating_add(cost);
        if self.copied > self.budget() {
            return Err(self.bad(
                at,
                format!(
                    "memo copies would materialise more than {} MiB from {} bytes of pickle (a memo bomb?)",
                    self.budget() >> 20,
                    self.data.len()
                ),
            ));
        }
        Ok(v.clone())
    }

    /// A charged copy of the top of the stack (see [`Machine::copy`]).
    fn copy_top(&mut self, at: usize) -> Result<Value, PickleError> {
        let v = self.pop(at)?;
        let copy = self.copy(&v, at);
        self.stack.push(v);
        copy
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], PickleError> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.data.len());
        let end = end.ok_or(PickleError::Truncated(self.pos))?;
        let s = &self.data[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    fn u8(&mut self) -> Result<u8, PickleError> {
        Ok(self.take(1)?[0])
    }

    fn le<const N: usize>(&mut self) -> Result<[u8; N], PickleError> {
        let mut b = [0u8; N];
        b.copy_from_slice(self.take(N)?);
        Ok(b)
    }

    fn line(&mut self) -> Result<&'a [u8], PickleError> {
        let rest = &self.data[self.pos..];
        let n = rest
            .iter()
            .position(|&c| c == b'\n')
            .ok_or(PickleError::Truncated(self.pos))?;
        let s = &rest[..n];
        self.pos += n + 1;
        Ok(s)
    }

    fn bad(&self, at: usize, message: impl Into<String>) -> PickleError {
        PickleError::Malformed {
            at,
            message: message.into(),
        }
    }

    fn pop(&mut self, at: usize) -> Result<Value, PickleError> {
        self.stack
            .pop()
            .ok_or_else(|| self.bad(at, "stack underflow"))
    }

    fn pop_mark(&mut self, at: usize) -> Result<Vec<Value>, PickleError> {
        let m = self.marks.pop().ok_or_else(|| self.bad(at, "no MARK"))?;
        if m > self.stack.len() {
            return Err(self.bad(at, "MARK above stack"));
        }
        Ok(self.stack.split_off(m))
    }

    fn top(&mut self, at: usize) -> Result<&mut Value, PickleError> {
        let n = self.stack.len();
        if n == 0 {
            return Err(self.bad(at, "stack underflow"));
        }
        Ok(&mut self.stack[n - 1])
    }

    fn string(&self, bytes: &[u8], at: usize) -> Result<Value, PickleError> {
        String::from_utf8(bytes.to_vec())
            .map(Value::Str)
            .map_err(|_| self.bad(at, "invalid UTF-8 in str"))
    }

    fn run(mut self, reduce: &mut Reducer<'_>) -> Result<Value, PickleError> {
        loop {
            let at = self.pos;
            let op = self.u8()?;
            match op {
                0x80 => {
                    self.u8()?; // PROTO
                }
                0x95 => {
                    self.take(8)?; // FRAME
                }
                b'.' => return self.pop(at), // STOP
                b'(' => self.marks.push(self.stack.len()),
                b'0' => {
                    self.pop(at)?;
                }
                b'1' => {
                    self.pop_mark(at)?;
                }
                b'2' => {
                    let v = self.copy_top(at)?;
                    self.stack.push(v);
                }
                b'N' => self.stack.push(Value::None),
                0x88 => self.stack.push(Value::Bool(true)),
                0x89 => self.stack.push(Value::Bool(false)),
                b'J' => {
                    let v = i32::from_le_bytes(self.le()?);
                    self.stack.push(Value::Int(v as i64));
                }
                b'K' => {
                    let v = self.u8()?;
                    self.stack.push(Value::Int(v as i64));
                }
                b'M' => {
                    let v = u16::from_le_bytes(self.le()?);
                    self.stack.push(Value::Int(v as i64));
                }
                0x8a | 0x8b => {
                    let n = if op == 0x8a {
                        self.u8()? as usize
                    } else {
                        u32::from_le_bytes(self.le()?) as usize
                    };
                    let bytes = self.take(n)?.to_vec();
                    self.stack.push(long_value(bytes));
                }
                b'I' | b'L' => {
                    let line = self.line()?;
                    let s = std::str::from_utf8(line).map_err(|_| self.bad(at, "bad INT"))?;
                    let s = s.trim_end_matches('L');
                    let v = match s {
                        "00" => Value::Bool(false),
                        "01" => Value::Bool(true),
                        _ => Value::Int(s.parse().map_err(|_| self.bad(at, "bad INT"))?),
                    };
                    self.stack.push(v);
                }
                b'G' => {
                    let v = f64::from_be_bytes(self.le()?);
                    self.stack.push(Value::Float(v));
                }
                b'F' => {
                    let line = self.line()?;
                    let v = std::str::from_utf8(line)
                        .ok()
                        .and_then(|s| s.parse().ok())
                        .ok_or_else(|| self.bad(at, "bad FLOAT"))?;
                    self.stack.push(Value::Float(v));
                }
                b'X' | 0x8c | 0x8d => {
                    let n = match op {
                        b'X' => u32::from_le_bytes(self.le()?) as usize,
                        0x8c => self.u8()? as usize,
                        _ => usize::try_from(u64::from_le_bytes(self.le()?))
                            .map_err(|_| self.bad(at, "length"))?,
                    };
                    let bytes = self.take(n)?;
                    let v = self.string(bytes, at)?;
                    self.stack.push(v);
                }
                b'T' | b'U' => {
                    // Python 2 str: bytes, read as Latin-1 text
                    let n = if op == b'T' {
                        u32::from_le_bytes(self.le()?) as usize
                    } else {
                        self.u8()? as usize
                    };
                    let s = self.take(n)?.iter().map(|&b| b as char).collect();
                    self.stack.push(Value::Str(s));
                }
                b'B' | b'C' | 0x8e | 0x96 => {
                    let n = match op {
                        b'B' => u32::from_le_bytes(self.le()?) as usize,
                        b'C' => self.u8()? as usize,
                        _ => usize::try_from(u64::from_le_bytes(self.le()?))
                            .map_err(|_| self.bad(at, "length"))?,
                    };
                    let b = self.take(n)?.to_vec();
                    self.stack.push(Value::Bytes(b));
                }
                b'S' | b'V' => {
                    let line = self.line()?;
                    let s = String::from_utf8_lossy(line);
                    let s = s.trim_matches(|c| c == '\'' || c == '"').to_string();
                    self.stack.push(Value::Str(s));
                }
                b']' => self
                    .stack
                    .push(Value::List(Rc::new(RefCell::new(Vec::new())))),
                b'l' => {
                    let items = self.pop_mark(at)?;
                    self.stack.push(Value::List(Rc::new(RefCell::new(items))));
                }
                b'}' => self
                    .stack
                    .push(Value::Dict(Rc::new(RefCell::new(Vec::new())))),
                b'd' => {
                    let items = self.pop_mark(at)?;
                    let d = pairs(items).ok_or_else(|| self.bad(at, "odd DICT"))?;
                    self.stack.push(Value::Dict(Rc::new(RefCell::new(d))));
                }
                b')' => self.stack.push(Value::Tuple(Vec::new())),
                b't' => {
                    let items = self.pop_mark(at)?;
                    self.stack.push(Value::Tuple(items));
                }
                0x85..=0x87 => {
                    let n = (op - 0x84) as usize;
                    if self.stack.len() < n {
                        return Err(self.bad(at, "stack underflow"));
                    }
                    let items = self.stack.split_off(self.stack.len() - n);
                    self.stack.push(Value::Tuple(items));
                }
                0x8f => self
                    .stack
                    .push(Value::List(Rc::new(RefCell::new(Vec::new())))), // EMPTY_SET
                0x90 | b'e' => {
                    let items = self.pop_mark(at)?;
                    match self.top(at)? {
                        Value::List(l) => l.borrow_mut().extend(items),
                        _ => return Err(self.bad(at, "APPENDS/ADDITEMS to a non-list")),
                    }
                }
                0x91 => {
                    let items = self.pop_mark(at)?;
                    self.stack.push(Value::List(Rc::new(RefCell::new(items))));
                }
                b'a' => {
                    let v = self.pop(at)?;
                    match self.top(at)? {
                        Value::List(l) => l.borrow_mut().push(v),
                        _ => return Err(self.bad(at, "APPEND to a non-list")),
                    }
                }
                b's' => {
                    let v = self.pop(at)?;
                    let k = self.pop(at)?;
                    self.set_items(vec![(k, v)], at)?;
                }
                b'u' => {
                    let items = self.pop_mark(at)?;
                    let d = pairs(items).ok_or_else(|| self.bad(at, "odd SETITEMS"))?;
                    self.set_items(d, at)?;
                }
                b'p' => {
                    let line = self.line()?;
                    let idx = parse_ascii(line).ok_or_else(|| self.bad(at, "bad PUT"))?;
                    let v = self.copy_top(at)?;
                    self.memo.insert(idx, v);
                }
                b'q' | b'r' | 0x94 => {
                    let idx = match op {
                        b'q' => self.u8()? as u64,
                        b'r' => u32::from_le_bytes(self.le()?) as u64,
                        _ => self.memo.len() as u64,
                    };
                    let v = self.copy_top(at)?;
                    self.memo.insert(idx, v);
                }
                b'g' | b'h' | b'j' => {
                    let idx = match op {
                        b'g' => parse_ascii(self.line()?).ok_or_else(|| self.bad(at, "bad GET"))?,
                        b'h' => self.u8()? as u64,
                        _ => u32::from_le_bytes(self.le()?) as u64,
                    };
                    let v = self.memo.remove(&idx);
                    let v = v.ok_or_else(|| self.bad(at, format!("memo {idx} missing")))?;
                    let copy = self.copy(&v, at);
                    self.memo.insert(idx, v);
                    self.stack.push(copy?);
                }
                b'c' => {
                    let module = String::from_utf8_lossy(self.line()?).into_owned();
                    let name = String::from_utf8_lossy(self.line()?).into_owned();
                    self.stack.push(Value::Global(module, name));
                }
                0x93 => {
                    let name = self.pop(at)?;
                    let module = self.pop(at)?;
                    match (&module, &name) {
                        (Value::Str(m), Value::Str(n)) => {
                            self.stack.push(Value::Global(m.clone(), n.clone()))
                        }
                        _ => return Err(self.bad(at, "STACK_GLOBAL needs two str")),
                    }
                }
                b'R' | 0x81 | 0x92 => {
                    if op == 0x92 {
                        self.pop(at)?; // NEWOBJ_EX kwargs
                    }
                    let args = self.pop(at)?;
                    let callable = self.pop(at)?;
                    let v = self.call(callable, args, reduce, at)?;
                    self.stack.push(v);
                }
                b'b' => {
                    let state = self.pop(at)?;
                    let obj = self.top(at)?;
                    // OrderedDict state, tensor hooks: nothing to keep
                    if let Value::Object { state: s, .. } = obj {
                        *s = Some(Box::new(state));
                    }
                }
                b'Q' => {
                    let pid = self.pop(at)?;
                    self.stack.push(Value::PersistentId(Box::new(pid)));
                }
                b'P' => {
                    let line = String::from_utf8_lossy(self.line()?).into_owned();
                    self.stack
                        .push(Value::PersistentId(Box::new(Value::Str(line))));
                }
                0x97 => {
                    let v = self.pop(at)?; // READONLY_BUFFER / NEXT_BUFFER not supported
                    self.stack.push(v);
                }
                _ => return Err(PickleError::Opcode { op, at }),
            }
        }
    }

    fn set_items(&mut self, items: Vec<(Value, Value)>, at: usize) -> Result<(), PickleError> {
        match self.top(at)? {
            Value::Dict(d) => {
                let mut d = d.borrow_mut();
                for (k, v) in items {
                    match d.iter_mut().find(|(old, _)| same_key(old, &k)) {
                        Some(slot) => slot.1 = v,
                        None => d.push((k, v)),
                    }
                }
                Ok(())
            }
            // e.g. a defaultdict or custom mapping: keep the items as its state
            Value::Object { state, .. } => {
                let entries = Rc::new(RefCell::new(items));
                *state = Some(Box::new(Value::Dict(entries)));
                Ok(())
            }
            other => Err(PickleError::Malformed {
                at,
                message: format!("SETITEM on {}", other.type_name()),
            }),
        }
    }

    fn call(
        &mut self,
        callable: Value,
        args: Value,
        reduce: &mut Reducer<'_>,
        at: usize,
    ) -> Result<Value, PickleError> {
        let Value::Global(module, name) = &callable else {
            return Err(self.bad(at, format!("call of a {}", callable.type_name())));
        };
        let (module, name) = (module.clone(), name.clone());
        if let Some(v) = reduce(&module, &name, &args) {
            return Ok(v);
        }
        Ok(match (module.as_str(), name.as_str()) {
            ("collections", "OrderedDict") | ("builtins", "dict") | ("__builtin__", "dict") => {
                Value::Dict(Rc::new(RefCell::new(Vec::new())))
            }
            ("collections", "defaultdict") => Value::Dict(Rc::new(RefCell::new(Vec::new()))),
            _ => Value::Object {
                class: (module, name),
                args: Box::new(args),
                state: None,
            },
        })
    }
}

fn pairs(items: Vec<Value>) -> Option<Vec<(Value, Value)>> {
    if !items.len().is_multiple_of(2) {
        return None;
    }
    let mut it = items.into_iter();
    let mut out = Vec::new();
    while let (Some(k), Some(v)) = (it.next(), it.next()) {
        out.push((k, v));
    }
    Some(out)
}

fn same_key(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Str(x), Value::Str(y)) => x == y,
        (Value::Int(x), Value::Int(y)) => x == y,
        _ => false,
    }
}

fn parse_ascii(line: &[u8]) -> Option<u64> {
    std::str::from_utf8(line).ok()?.trim().parse().ok()
}

fn long_value(bytes: Vec<u8>) -> Value {
    if bytes.is_empty() {
        return Value::Int(0);
    }
    if bytes.len() <= 8 {
        let neg = bytes[bytes.len() - 1] & 0x80 != 0;
        let mut b = [if neg { 0xff } else { 0 }; 8];
        b[..bytes.len()].copy_from_slice(&bytes);
        return Value::Int(i64::from_le_bytes(b));
    }
    Value::BigInt(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Bytes of `pickle.dumps({'a': [1, -2, 3.5, 'x'], 'b': (True, None)}, protocol=2)`, written out
    /// opcode by opcode from the pickle spec.
    #[test]
    fn reads_hand_assembled_protocol2() {
        let mut p = vec![0x80, 2, b'}', b'q', 0, b'('];
        p.extend([b'X', 1, 0, 0, 0, b'a', b']', b'q', 1, b'(']);
        p.extend([b'K', 1, b'J']);
        p.extend((-2i32).to_le_bytes());
        p.push(b'G');
        p.extend(3.5f64.to_be_bytes());
        p.extend([b'X', 1, 0, 0, 0, b'x', b'e']);
        p.extend([b'X', 1, 0, 0, 0, b'b', 0x88, b'N', 0x86, b'u', b'.']);
        let v = load_plain(&p).unwrap();
        let a = v.get("a").unwrap().as_items().unwrap();
        assert_eq!(a[0].as_int(), Some(1));
        assert_eq!(a[1].as_int(), Some(-2));
        assert!(matches!(a[2], Value::Float(f) if f == 3.5));
        assert_eq!(a[3].as_str(), Some("x"));
        let b = v.get("b").unwrap().as_items().unwrap();
        assert!(matches!(b[0], Value::Bool(true)) && matches!(b[1], Value::None));
    }

    #[test]
    fn globals_are_never_called() {
        // cos\nsystem\n(S'echo pwned'\ntR.  — the classic exploit becomes an inert object
        let p = b"cos\nsystem\n(S'echo pwned'\ntR.";
        match &load_plain(p).unwrap() {
            Value::Object { class, args, .. } => {
                assert_eq!(*class, ("os".to_string(), "system".to_string()));
                assert_eq!(args.as_items().unwrap()[0].as_str(), Some("echo pwned"));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        for bytes in [
            &b""[..],
            b"\x80\x02",
            b"X\xff\xff\xff\xff",
            b"h\x05.",
            b"0",
            b"u",
            b"\xfe",
        ] {
            assert!(load_plain(bytes).is_err(), "{bytes:?}");
        }
        // every prefix of a valid pickle fails cleanly
        let p = b"\x80\x02]q\x00(K\x01K\x02e.";
        for n in 0..p.len() {
            assert!(load_plain(&p[..n]).is_err());
        }
        assert!(load_plain(p).is_ok());
    }

    fn malformed_message(bytes: &[u8]) -> String {
        match load_plain(bytes) {
            Err(PickleError::Malformed { message, .. }) => message,
            other => panic!("expected a malformed-pickle error, got {other:?}"),
        }
    }

    /// 200 000 nested tuples (MARK … TUPLE) and lists (EMPTY_LIST … APPEND): an error, not a stack
    /// overflow, on a test thread's 2 MiB stack, including when the deep value is dropped.
    #[test]
    fn deep_nesting_is_refused_without_overflowing_the_stack() {
        let n = 200_000;
        let mut tuples = vec![b'('; n];
        tuples.extend(std::iter::repeat_n(b't', n));
        tuples.push(b'.');
        assert!(malformed_message(&tuples).contains("nesting deeper than 1000"));

        let mut lists = vec![b']'; n];
        lists.extend(std::iter::repeat_n(b'a', n - 1));
        lists.push(b'.');
        assert!(malformed_message(&lists).contains("nesting deeper than 1000"));

        // DUP of the deep tuple: the copy would recurse, so it is refused before copying
        let mut dup = vec![b'('; n];
        dup.extend(std::iter::repeat_n(b't', n));
        dup.extend([b'2', b'.']);
        assert!(malformed_message(&dup).contains("nesting deeper than 1000"));

        // 1000 levels is what Python can write, and reads
        let mut ok = vec![b'('; MAX_DEPTH];
        ok.extend(std::iter::repeat_n(b't', MAX_DEPTH));
        ok.push(b'.');
        assert!(load_plain(&ok).is_ok());
    }

    /// `t = (); repeat 64 times: t = (t, t)` through the memo: 2^64 nodes if copied naively. A few
    /// hundred bytes must be refused with a reason, quickly.
    #[test]
    fn a_memo_bomb_is_refused() {
        let mut p = vec![0x80, 2, b')', b'q', 0];
        for _ in 0..64 {
            p.extend([b'0', b'h', 0, b'h', 0, 0x86, b'q', 0]);
        }
        p.push(b'.');
        assert!(p.len() < 600);
        let started = std::time::Instant::now();
        assert!(malformed_message(&p).contains("memo bomb"));
        assert!(started.elapsed().as_secs() < 10);
    }

    /// A list that contains itself is refused (walkers would never finish); a list shared by every
    /// level of a 60-level DAG (2^60 paths) is fine and measured once per list.
    #[test]
    fn cycles_are_refused_and_shared_lists_are_measured_once() {
        // EMPTY_LIST, BINPUT 0, BINGET 0, APPEND, STOP
        assert!(malformed_message(b"]q\x00h\x00a.").contains("contains itself"));
        let mut p = vec![b']', b'q', 0];
        for i in 1..60u8 {
            p.extend([b']', b'q', i, b'(', b'h', i - 1, b'h', i - 1, b'e']);
        }
        p.push(b'.');
        let v = load_plain(&p).unwrap();
        assert_eq!(v.as_items().unwrap().len(), 2);
    }

    #[test]
    fn longs() {
        assert!(matches!(long_value(vec![0xff]), Value::Int(-1)));
        assert!(matches!(long_value(vec![0x00, 0x01]), Value::Int(256)));
        assert!(matches!(long_value(vec![1; 9]), Value::BigInt(_)));
    }
}
