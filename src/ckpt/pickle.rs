//! A bounded pickle virtual machine (protocols 0-5 as PyTorch uses them) that builds inert values.
//! GLOBALs are checked against the allow-list as they are read; calls go through `allow::call`.
//!
//! Like Python's unpickler, the stack and the memo hold references: every container is one node
//! of an arena, so a dict memoised and then filled or changed is seen filled and changed through
//! every name. The tree handed back is a copy made at STOP, charged against the input's size.

use super::allow::{self, Policy};
use super::value::{TensorRef, Value};
use anyhow::{Result, anyhow, bail};
use std::collections::{BTreeSet, HashMap};

const MAX_STACK: usize = 1 << 20;
const MAX_MEMO: usize = 1 << 20;
const MAX_DEPTH: usize = 100;
const MAX_LONG_BYTES: usize = 64;

/// The result of one pickle: its value, the offset just past STOP, and every GLOBAL it named.
pub struct Unpickled {
    pub value: Value,
    pub end: usize,
    pub globals: BTreeSet<String>,
}

/// Unpickles the pickle that starts at `start` of `data` under the torch allow-list.
pub fn unpickle(data: &[u8], start: usize) -> Result<Unpickled> {
    unpickle_with(data, start, Policy::Torch)
}

/// Unpickles under `policy`'s allow-list. Errors give the byte offset.
pub fn unpickle_with(data: &[u8], start: usize, policy: Policy) -> Result<Unpickled> {
    let mut vm = Vm {
        policy,
        data,
        pos: start,
        nodes: Vec::new(),
        stack: Vec::new(),
        marks: Vec::new(),
        memo: HashMap::new(),
        globals: BTreeSet::new(),
        copy_budget: data.len().saturating_mul(4).saturating_add(1 << 20),
    };
    loop {
        let op_at = vm.pos;
        match vm.step() {
            Ok(None) => {}
            Ok(Some(value)) => return Ok(Unpickled { value, end: vm.pos, globals: vm.globals }),
            Err(e) => return Err(e.context(format!("pickle opcode at byte {op_at}"))),
        }
    }
}

/// Strings and bytes from this size on are moved, not copied, out of the arena: array data (BYOL's
/// numpy arrays travel as large latin-1 strings) would otherwise be held several times over.
/// Python's picklers never use one twice (each is a fresh object); a pickle that does is refused.
const MOVE_AT: usize = 1 << 20;

/// An index into the VM's arena.
type Id = usize;

/// A dict key as Python hashes it: equal keys (1, 1.0 and True among them) are one key.
#[derive(Clone, PartialEq, Eq, Hash)]
enum Key {
    None,
    Int(i64),
    Float(u64),
    Big(Vec<u8>),
    Str(String),
    Bytes(Vec<u8>),
    Tuple(Vec<Key>),
    /// Hashed by identity (globals, storages, tensors, objects).
    Object(Id),
}

/// One object of the pickle, shared by every stack slot and memo entry that names it.
enum Node {
    Leaf(Value),
    /// A large string or bytes already moved into the result.
    Moved,
    List(Vec<Id>),
    Tuple(Vec<Id>),
    Set(Vec<Id>),
    Dict {
        items: Vec<(Id, Id)>,
        index: HashMap<Key, usize>,
    },
    Object {
        class: String,
        args: Vec<Id>,
        state: Option<Id>,
    },
}

impl Node {
    fn kind(&self) -> &'static str {
        match self {
            Node::Leaf(v) => v.kind(),
            Node::Moved => "str",
            Node::List(_) => "list",
            Node::Tuple(_) => "tuple",
            Node::Set(_) => "set",
            Node::Dict { .. } => "dict",
            Node::Object { .. } => "object",
        }
    }
}

struct Vm<'a> {
    policy: Policy,
    data: &'a [u8],
    pos: usize,
    nodes: Vec<Node>,
    stack: Vec<Id>,
    marks: Vec<usize>,
    memo: HashMap<u32, Id>,
    globals: BTreeSet<String>,
    copy_budget: usize,
}

impl<'a> Vm<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.data.len());
        let end = end.ok_or_else(|| anyhow!("pickle ends early (needs {n} more bytes at byte {})", self.pos))?;
        let s = &self.data[self.pos..end];
        self.pos = end;
        Ok(s)
    }
    fn u8(&mut self) -> Result<u8> {
        Ok(self.take(1)?[0])
    }
    fn u16(&mut self) -> Result<u16> {
        let b = self.take(2)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }
    fn u32(&mut self) -> Result<u32> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn u64(&mut self) -> Result<u64> {
        let b = self.take(8)?;
        Ok(u64::from_le_bytes(b.try_into()?))
    }
    fn line(&mut self) -> Result<&'a str> {
        let rest = &self.data[self.pos..];
        let n = rest.iter().position(|&b| b == b'\n').ok_or_else(|| anyhow!("text opcode without a newline"))?;
        let s = std::str::from_utf8(&rest[..n]).map_err(|_| anyhow!("text opcode argument is not UTF-8"))?;
        self.pos += n + 1;
        Ok(s)
    }
    fn utf8(&mut self, n: u64) -> Result<Value> {
        let b = self.take(usize::try_from(n)?)?;
        Ok(Value::Str(String::from_utf8(b.to_vec()).map_err(|_| anyhow!("string is not UTF-8"))?))
    }
    fn bytes(&mut self, n: u64) -> Result<Value> {
        Ok(Value::Bytes(self.take(usize::try_from(n)?)?.to_vec()))
    }

    /// Adds a node to the arena (one per opcode or per interned call result, so bounded by the input).
    fn new_node(&mut self, node: Node) -> Id {
        self.nodes.push(node);
        self.nodes.len() - 1
    }
    fn push_id(&mut self, id: Id) -> Result<()> {
        if self.stack.len() >= MAX_STACK {
            bail!("pickle stack exceeds {MAX_STACK} items");
        }
        self.stack.push(id);
        Ok(())
    }
    fn push(&mut self, node: Node) -> Result<()> {
        let id = self.new_node(node);
        self.push_id(id)
    }
    fn push_value(&mut self, v: Value) -> Result<()> {
        self.push(Node::Leaf(v))
    }
    fn pop(&mut self) -> Result<Id> {
        if self.marks.last().is_some_and(|&m| m >= self.stack.len()) {
            bail!("pickle pops past a MARK");
        }
        self.stack.pop().ok_or_else(|| anyhow!("pickle stack underflow"))
    }
    fn top(&self) -> Result<Id> {
        if self.marks.last().is_some_and(|&m| m >= self.stack.len()) {
            bail!("pickle reads past a MARK");
        }
        self.stack.last().copied().ok_or_else(|| anyhow!("pickle stack underflow"))
    }
    fn pop_mark(&mut self) -> Result<Vec<Id>> {
        let m = self.marks.pop().ok_or_else(|| anyhow!("pickle uses a MARK that was never set"))?;
        Ok(self.stack.split_off(m))
    }
    fn memo_get(&mut self, idx: u64) -> Result<()> {
        let found = u32::try_from(idx).ok().and_then(|i| self.memo.get(&i)).copied();
        let id = found.ok_or_else(|| anyhow!("memo entry {idx} does not exist"))?;
        self.push_id(id)
    }
    fn memo_put(&mut self, idx: u64) -> Result<()> {
        let idx = u32::try_from(idx).map_err(|_| anyhow!("memo index {idx} is too large"))?;
        if self.memo.len() >= MAX_MEMO && !self.memo.contains_key(&idx) {
            bail!("pickle memo exceeds {MAX_MEMO} entries");
        }
        let id = self.top()?;
        self.memo.insert(idx, id);
        Ok(())
    }
    fn global(&mut self, module: &str, name: &str) -> Result<()> {
        let full = format!("{module}.{name}");
        if !allow::is_allowed(&full, self.policy) {
            bail!("refusing GLOBAL {full}: it is not on the allow-list");
        }
        self.globals.insert(full.clone());
        self.push_value(Value::Global(full))
    }
    fn charge(&mut self, weight: usize) -> Result<()> {
        if weight >= self.copy_budget {
            bail!("pickle copies more shared values than its size allows");
        }
        self.copy_budget -= weight;
        Ok(())
    }

    /// The value node `id` stands for, copied out of the arena (large strings moved).
    fn materialize(&mut self, id: Id, depth: usize) -> Result<Value> {
        if depth > MAX_DEPTH {
            bail!("pickle nests values deeper than {MAX_DEPTH} levels (or a value contains itself)");
        }
        self.charge(1)?;
        let ids = |xs: &Vec<Id>| xs.clone();
        let many = |vm: &mut Self, xs: Vec<Id>| -> Result<Vec<Value>> {
            xs.into_iter().map(|x| vm.materialize(x, depth + 1)).collect()
        };
        match &self.nodes[id] {
            Node::Leaf(Value::Str(s)) if s.len() >= MOVE_AT => {
                self.charge(s.len() / 16)?;
                match std::mem::replace(&mut self.nodes[id], Node::Moved) {
                    Node::Leaf(v) => Ok(v),
                    _ => unreachable!("matched a leaf above"),
                }
            }
            Node::Leaf(Value::Bytes(b)) if b.len() >= MOVE_AT => {
                self.charge(b.len() / 16)?;
                match std::mem::replace(&mut self.nodes[id], Node::Moved) {
                    Node::Leaf(v) => Ok(v),
                    _ => unreachable!("matched a leaf above"),
                }
            }
            Node::Leaf(v) => {
                let v = v.clone();
                self.charge(v.weight(usize::MAX))?;
                Ok(v)
            }
            Node::Moved => {
                bail!("pickle refers back to a string or bytes over {MOVE_AT} bytes, which is not supported")
            }
            Node::List(xs) => {
                let xs = ids(xs);
                Ok(Value::List(many(self, xs)?))
            }
            Node::Tuple(xs) => {
                let xs = ids(xs);
                Ok(Value::Tuple(many(self, xs)?))
            }
            Node::Set(xs) => {
                let xs = ids(xs);
                Ok(Value::Set(many(self, xs)?))
            }
            Node::Dict { items, .. } => {
                let items = items.clone();
                let mut out = Vec::with_capacity(items.len());
                for (k, v) in items {
                    out.push((self.materialize(k, depth + 1)?, self.materialize(v, depth + 1)?));
                }
                Ok(Value::Dict(out))
            }
            Node::Object { class, args, state } => {
                let (class, args, state) = (class.clone(), args.clone(), *state);
                let args = many(self, args)?;
                let state = match state {
                    Some(s) => Some(Box::new(self.materialize(s, depth + 1)?)),
                    None => None,
                };
                Ok(Value::Object { class, args, state })
            }
        }
    }

    /// Puts a value built by a call into the arena, so that later opcodes can change it.
    fn intern(&mut self, v: Value) -> Result<Id> {
        let node = match v {
            Value::List(xs) => Node::List(xs.into_iter().map(|x| self.intern(x)).collect::<Result<_>>()?),
            Value::Tuple(xs) => Node::Tuple(xs.into_iter().map(|x| self.intern(x)).collect::<Result<_>>()?),
            Value::Set(xs) => Node::Set(xs.into_iter().map(|x| self.intern(x)).collect::<Result<_>>()?),
            Value::Dict(items) => {
                let dict = self.new_node(Node::Dict { items: Vec::new(), index: HashMap::new() });
                for (k, v) in items {
                    let (k, v) = (self.intern(k)?, self.intern(v)?);
                    self.set_item(dict, k, v)?;
                }
                return Ok(dict);
            }
            Value::Object { class, args, state } => {
                let args = args.into_iter().map(|x| self.intern(x)).collect::<Result<_>>()?;
                let state = state.map(|s| self.intern(*s)).transpose()?;
                Node::Object { class, args, state }
            }
            leaf => Node::Leaf(leaf),
        };
        Ok(self.new_node(node))
    }

    /// How Python's dict would hash node `id`; unhashable values (lists, dicts, sets) are refused.
    fn key(&mut self, id: Id, depth: usize) -> Result<Key> {
        if depth > MAX_DEPTH {
            bail!("pickle nests a dict key deeper than {MAX_DEPTH} levels");
        }
        self.charge(1)?;
        Ok(match &self.nodes[id] {
            Node::Leaf(Value::None) => Key::None,
            Node::Leaf(Value::Bool(b)) => Key::Int(*b as i64),
            Node::Leaf(Value::Int(i)) => Key::Int(*i),
            Node::Leaf(Value::BigInt(b)) => Key::Big(b.clone()),
            Node::Leaf(Value::Float(f)) if f.fract() == 0.0 && f.abs() < 9.0e18 => Key::Int(*f as i64),
            Node::Leaf(Value::Float(f)) if f.is_nan() => Key::Object(id),
            Node::Leaf(Value::Float(f)) => Key::Float(f.to_bits()),
            Node::Leaf(Value::Str(s)) => {
                let s = s.clone();
                self.charge(s.len() / 16)?;
                Key::Str(s)
            }
            Node::Leaf(Value::Bytes(b)) => {
                let b = b.clone();
                self.charge(b.len() / 16)?;
                Key::Bytes(b)
            }
            Node::Tuple(xs) => {
                let xs = xs.clone();
                Key::Tuple(xs.into_iter().map(|x| self.key(x, depth + 1)).collect::<Result<_>>()?)
            }
            Node::Leaf(_) | Node::Object { .. } => Key::Object(id),
            Node::Moved => {
                bail!("pickle refers back to a string or bytes over {MOVE_AT} bytes, which is not supported")
            }
            other => bail!("a dict key is a {}, which Python cannot hash", other.kind()),
        })
    }

    /// `dict[key] = value` as Python does it: a key already present keeps its place and takes the value.
    fn set_item(&mut self, dict: Id, k: Id, v: Id) -> Result<()> {
        let key = self.key(k, 0)?;
        match &mut self.nodes[dict] {
            Node::Dict { items, index } => match index.get(&key) {
                Some(&at) => items[at].1 = v,
                None => {
                    index.insert(key, items.len());
                    items.push((k, v));
                }
            },
            other => bail!("SETITEM(S) on a {}, not a dict", other.kind()),
        }
        Ok(())
    }
    fn long(&mut self, bytes: &[u8]) -> Result<Value> {
        if bytes.len() > MAX_LONG_BYTES {
            bail!("integer of {} bytes exceeds the {MAX_LONG_BYTES}-byte limit", bytes.len());
        }
        // Two's complement without redundant sign bytes, so that one number has one form.
        let mut bytes = bytes;
        while let [rest @ .., a, b] = bytes
            && ((*b == 0 && a & 0x80 == 0) || (*b == 0xff && a & 0x80 != 0))
        {
            bytes = &bytes[..rest.len() + 1];
        }
        if bytes.is_empty() {
            return Ok(Value::Int(0));
        }
        if bytes.len() <= 8 {
            let neg = bytes[bytes.len() - 1] & 0x80 != 0;
            let mut b = [if neg { 0xff } else { 0 }; 8];
            b[..bytes.len()].copy_from_slice(bytes);
            return Ok(Value::Int(i64::from_le_bytes(b)));
        }
        Ok(Value::BigInt(bytes.to_vec()))
    }
    fn set_items(&mut self, items: Vec<Id>) -> Result<()> {
        if !items.len().is_multiple_of(2) {
            bail!("SETITEMS with an odd number of items");
        }
        let dict = self.top()?;
        if !matches!(self.nodes[dict], Node::Dict { .. }) {
            bail!("SETITEM(S) on a {}, not a dict", self.nodes[dict].kind());
        }
        for pair in items.chunks_exact(2) {
            self.set_item(dict, pair[0], pair[1])?;
        }
        Ok(())
    }
    fn append(&mut self, items: Vec<Id>) -> Result<()> {
        let top = self.top()?;
        match &mut self.nodes[top] {
            Node::List(l) => l.extend(items),
            other => bail!("APPEND(S) on a {}, not a list", other.kind()),
        }
        Ok(())
    }
    /// `collections.OrderedDict(pairs)` on the arena itself, so the pairs' values stay shared.
    fn ordered_dict(&mut self, args: &[Id]) -> Result<Id> {
        let pairs = match args {
            [] => Vec::new(),
            [seq] => match &self.nodes[*seq] {
                Node::List(xs) | Node::Tuple(xs) => xs.clone(),
                _ => bail!("collections.OrderedDict with unexpected arguments"),
            },
            _ => bail!("collections.OrderedDict with unexpected arguments"),
        };
        let dict = self.new_node(Node::Dict { items: Vec::new(), index: HashMap::new() });
        for p in pairs {
            match &self.nodes[p] {
                Node::Tuple(kv) | Node::List(kv) if kv.len() == 2 => {
                    let (k, v) = (kv[0], kv[1]);
                    self.set_item(dict, k, v)?
                }
                _ => bail!("collections.OrderedDict item is not a (key, value) pair"),
            }
        }
        Ok(dict)
    }
    fn call(&mut self, callee: Id, args: Id) -> Result<()> {
        let Node::Tuple(arg_ids) = &self.nodes[args] else {
            bail!("a call with {} arguments instead of a tuple", self.nodes[args].kind());
        };
        let arg_ids = arg_ids.clone();
        let id = match &self.nodes[callee] {
            Node::Leaf(Value::Global(g)) if g == "collections.OrderedDict" => self.ordered_dict(&arg_ids)?,
            Node::Leaf(Value::Global(g)) => {
                let g = g.clone();
                let args = arg_ids.into_iter().map(|a| self.materialize(a, 1)).collect::<Result<_>>()?;
                let v = allow::call(&g, args)?;
                self.intern(v)?
            }
            Node::Object { class, args: class_args, .. } if class == allow::NAMEDTUPLE => {
                let class_args = class_args.clone();
                let class_args = class_args.into_iter().map(|a| self.materialize(a, 1)).collect::<Result<Vec<_>>>()?;
                let args = arg_ids.into_iter().map(|a| self.materialize(a, 1)).collect::<Result<_>>()?;
                let v = allow::new_namedtuple(&class_args, args)?;
                self.intern(v)?
            }
            other => bail!("REDUCE/NEWOBJ on a {}, not an allowed global", other.kind()),
        };
        self.push_id(id)
    }
    fn build(&mut self, state: Id) -> Result<()> {
        let top = self.top()?;
        match &self.nodes[top] {
            Node::Object { .. } => {
                if let Node::Object { state: slot, .. } = &mut self.nodes[top] {
                    *slot = Some(state);
                }
            }
            // OrderedDict attributes (`_metadata`) carry nothing we use; torch sets them on the dict.
            Node::Dict { .. } => {}
            Node::Leaf(Value::Tensor(t)) => {
                let t = t.clone();
                let state = self.materialize(state, 1)?;
                self.nodes[top] = Node::Leaf(Value::Tensor(set_tensor(&t, state)?));
            }
            other => bail!("BUILD on a {}, which has no allowed state", other.kind()),
        }
        Ok(())
    }

    /// Runs one opcode; returns the final value at STOP.
    fn step(&mut self) -> Result<Option<Value>> {
        let op = self.u8()?;
        match op {
            0x80 => {
                let p = self.u8()?;
                if p > 5 {
                    bail!("pickle protocol {p} is newer than 5");
                }
            }
            0x95 => {
                self.u64()?;
            }
            b'.' => {
                let v = self.pop()?;
                if !self.stack.is_empty() || !self.marks.is_empty() {
                    bail!("pickle STOP with {} values left on the stack", self.stack.len());
                }
                return Ok(Some(self.materialize(v, 0)?));
            }
            b'(' => {
                if self.marks.len() >= MAX_STACK {
                    bail!("too many MARKs");
                }
                self.marks.push(self.stack.len());
            }
            b'0' => {
                self.pop()?;
            }
            b'1' => {
                self.pop_mark()?;
            }
            b'2' => {
                let v = self.top()?;
                self.push_id(v)?;
            }
            b'N' => self.push_value(Value::None)?,
            0x88 => self.push_value(Value::Bool(true))?,
            0x89 => self.push_value(Value::Bool(false))?,
            b'J' => {
                let v = self.u32()? as i32;
                self.push_value(Value::Int(v as i64))?
            }
            b'K' => {
                let v = self.u8()?;
                self.push_value(Value::Int(v as i64))?
            }
            b'M' => {
                let v = self.u16()?;
                self.push_value(Value::Int(v as i64))?
            }
            b'I' => {
                let v = match self.line()? {
                    "00" => Value::Bool(false),
                    "01" => Value::Bool(true),
                    s => Value::Int(s.parse().map_err(|_| anyhow!("INT argument {s:?} is not an integer"))?),
                };
                self.push_value(v)?
            }
            b'L' => {
                let s = self.line()?;
                let n = s
                    .trim_end_matches('L')
                    .parse()
                    .map_err(|_| anyhow!("LONG argument {s:?} is not a 64-bit integer"))?;
                self.push_value(Value::Int(n))?
            }
            b'F' => {
                let s = self.line()?;
                self.push_value(Value::Float(s.parse().map_err(|_| anyhow!("FLOAT argument {s:?} is not a number"))?))?
            }
            0x8a => {
                let n = self.u8()? as usize;
                let b = self.take(n)?;
                let v = self.long(b)?;
                self.push_value(v)?
            }
            0x8b => {
                let n = self.u32()? as usize;
                if n > MAX_LONG_BYTES {
                    bail!("integer of {n} bytes exceeds the {MAX_LONG_BYTES}-byte limit");
                }
                let b = self.take(n)?;
                let v = self.long(b)?;
                self.push_value(v)?
            }
            b'G' => {
                let b = self.take(8)?;
                self.push_value(Value::Float(f64::from_be_bytes(b.try_into()?)))?
            }
            b'X' => {
                let n = self.u32()?;
                let v = self.utf8(n as u64)?;
                self.push_value(v)?
            }
            0x8c => {
                let n = self.u8()?;
                let v = self.utf8(n as u64)?;
                self.push_value(v)?
            }
            0x8d => {
                let n = self.u64()?;
                let v = self.utf8(n)?;
                self.push_value(v)?
            }
            b'T' | b'B' => {
                let n = self.u32()?;
                let v = self.bytes(n as u64)?;
                self.push_value(v)?
            }
            b'U' | b'C' => {
                let n = self.u8()?;
                let v = self.bytes(n as u64)?;
                self.push_value(v)?
            }
            0x8e | 0x96 => {
                let n = self.u64()?;
                let v = self.bytes(n)?;
                self.push_value(v)?
            }
            b']' => self.push(Node::List(Vec::new()))?,
            b'}' => self.push(Node::Dict { items: Vec::new(), index: HashMap::new() })?,
            b')' => self.push(Node::Tuple(Vec::new()))?,
            0x8f => self.push(Node::Set(Vec::new()))?,
            b'l' => {
                let items = self.pop_mark()?;
                self.push(Node::List(items))?
            }
            b't' => {
                let items = self.pop_mark()?;
                self.push(Node::Tuple(items))?
            }
            0x91 => {
                let items = self.pop_mark()?;
                self.push(Node::Set(items))?
            }
            b'd' => {
                let items = self.pop_mark()?;
                self.push(Node::Dict { items: Vec::new(), index: HashMap::new() })?;
                self.set_items(items)?
            }
            0x85..=0x87 => {
                let n = (op - 0x84) as usize;
                let mut items = Vec::with_capacity(n);
                for _ in 0..n {
                    items.push(self.pop()?);
                }
                items.reverse();
                self.push(Node::Tuple(items))?
            }
            b'a' => {
                let v = self.pop()?;
                self.append(vec![v])?
            }
            b'e' => {
                let items = self.pop_mark()?;
                self.append(items)?
            }
            b's' => {
                let v = self.pop()?;
                let k = self.pop()?;
                self.set_items(vec![k, v])?
            }
            b'u' => {
                let items = self.pop_mark()?;
                self.set_items(items)?
            }
            0x90 => {
                let items = self.pop_mark()?;
                let top = self.top()?;
                match &mut self.nodes[top] {
                    Node::Set(s) => s.extend(items),
                    other => bail!("ADDITEMS on a {}, not a set", other.kind()),
                }
            }
            b'g' => {
                let s = self.line()?;
                let idx = s.parse().map_err(|_| anyhow!("GET argument {s:?} is not an index"))?;
                self.memo_get(idx)?
            }
            b'h' => {
                let i = self.u8()?;
                self.memo_get(i as u64)?
            }
            b'j' => {
                let i = self.u32()?;
                self.memo_get(i as u64)?
            }
            b'p' => {
                let s = self.line()?;
                let idx = s.parse().map_err(|_| anyhow!("PUT argument {s:?} is not an index"))?;
                self.memo_put(idx)?
            }
            b'q' => {
                let i = self.u8()?;
                self.memo_put(i as u64)?
            }
            b'r' => {
                let i = self.u32()?;
                self.memo_put(i as u64)?
            }
            0x94 => {
                let i = self.memo.len() as u64;
                self.memo_put(i)?
            }
            b'c' => {
                let module = self.line()?;
                let name = self.line()?;
                self.global(module, name)?
            }
            0x93 => {
                let name = self.pop()?;
                let module = self.pop()?;
                match (&self.nodes[module], &self.nodes[name]) {
                    (Node::Leaf(Value::Str(m)), Node::Leaf(Value::Str(n))) => {
                        let (m, n) = (m.clone(), n.clone());
                        self.global(&m, &n)?
                    }
                    _ => bail!("STACK_GLOBAL with non-string module or name"),
                }
            }
            b'R' => {
                let args = self.pop()?;
                let callee = self.pop()?;
                self.call(callee, args)?
            }
            0x81 => {
                let args = self.pop()?;
                let cls = self.pop()?;
                self.call(cls, args)?
            }
            0x92 => {
                let kwargs = self.pop()?;
                let args = self.pop()?;
                let cls = self.pop()?;
                if !matches!(&self.nodes[kwargs], Node::Dict { items, .. } if items.is_empty()) {
                    bail!("NEWOBJ_EX with keyword arguments");
                }
                self.call(cls, args)?
            }
            b'b' => {
                let state = self.pop()?;
                self.build(state)?
            }
            b'Q' => {
                let pid = self.pop()?;
                let pid = self.materialize(pid, 1)?;
                let v = allow::persistent_storage(pid)?;
                self.push_value(v)?
            }
            b'P' => bail!("refusing text persistent id (PERSID)"),
            b'i' => {
                let module = self.line()?;
                let name = self.line()?;
                bail!("refusing INST {module}.{name}");
            }
            b'o' => bail!("refusing OBJ (builds an arbitrary object)"),
            0x82..=0x84 => bail!("refusing EXT opcodes (extension registry)"),
            0x97 | 0x98 => bail!("refusing out-of-band buffers (NEXT_BUFFER/READONLY_BUFFER)"),
            b'S' | b'V' => bail!("refusing protocol-0 quoted string opcodes"),
            other => bail!("unknown pickle opcode 0x{other:02x}"),
        }
        Ok(None)
    }
}

/// `tensor.set_(*state)`, which torch's weights-only unpickler applies for BUILD on a tensor: the
/// tensor becomes a view (offset, size, stride) of the given storage, or all of it.
fn set_tensor(t: &TensorRef, state: Value) -> Result<TensorRef> {
    let refuse = || {
        anyhow!(
            "BUILD on a tensor with a state other than (storage, offset, size, stride) or (storage,), \
             which medxfer does not apply"
        )
    };
    let Value::Tuple(items) = state else { return Err(refuse()) };
    let mut it = items.into_iter();
    let storage = match it.next() {
        Some(Value::Storage(s)) => s,
        _ => return Err(refuse()),
    };
    if storage.dtype != t.storage.dtype {
        bail!(
            "BUILD sets a {} tensor to a {} storage {:?}, which torch refuses",
            t.storage.dtype.name(),
            storage.dtype.name(),
            storage.key
        );
    }
    let ints = |v: Value| match v {
        Value::Tuple(xs) | Value::List(xs) => {
            xs.into_iter().map(|x| if let Value::Int(i) = x { Some(i) } else { None }).collect::<Option<Vec<_>>>()
        }
        _ => None,
    };
    match (it.next(), it.next(), it.next(), it.next()) {
        (None, ..) => {
            let numel = i64::try_from(storage.numel).map_err(|_| refuse())?;
            Ok(TensorRef { storage, offset: 0, shape: vec![numel], stride: vec![1] })
        }
        (Some(Value::Int(offset)), Some(size), Some(stride), None) => {
            let shape = ints(size).ok_or_else(refuse)?;
            let stride = ints(stride).ok_or_else(refuse)?;
            Ok(TensorRef { storage, offset, shape, stride })
        }
        _ => Err(refuse()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(p: &[u8]) -> String {
        format!("{:#}", unpickle(p, 0).err().expect("should be refused"))
    }

    #[test]
    fn builds_plain_values() {
        // {'a': [1, -2, 3.5, True], 'b': (None, 'x')} at protocol 2
        let p = b"\x80\x02}q\x00(X\x01\x00\x00\x00a]q\x01(K\x01J\xfe\xff\xff\xffG@\x0c\x00\x00\x00\x00\x00\x00\x88eX\x01\x00\x00\x00bNX\x01\x00\x00\x00x\x86u.";
        let v = unpickle(p, 0).unwrap().value;
        assert_eq!(
            v.get("a"),
            Some(&Value::List(vec![Value::Int(1), Value::Int(-2), Value::Float(3.5), Value::Bool(true)]))
        );
        assert_eq!(v.get("b"), Some(&Value::Tuple(vec![Value::None, Value::Str("x".into())])));
    }

    #[test]
    fn refuses_what_could_run_code_or_blow_up() {
        assert!(err(b"cos\nsystem\n(S'ls'\ntR.").contains("refusing GLOBAL os.system"));
        assert!(err(b"\x80\x04\x8c\x08builtins\x8c\x04eval\x93.").contains("builtins.eval"));
        assert!(err(b"(ios\nsystem\n.").contains("INST os.system"));
        assert!(err(b"]K\x01K\x02s.").contains("not a dict"));
        assert!(err(b"}K\x01a.").contains("not a list"));
        assert!(err(b"\x82\x01.").contains("EXT"));
        assert!(err(b"P0\n.").contains("PERSID"));
        assert!(err(b"\x8b\x00\x00\x01\x00").contains("limit"));
        assert!(err(b"K\x01").contains("ends early"));
        // a list nested 200 deep
        let mut deep = vec![b']'; 200];
        deep.extend(vec![b'a'; 199]);
        deep.push(b'.');
        assert!(err(&deep).contains("deeper"));
        // doubling a shared list through the memo: copies are charged against the input's size
        let mut bomb = b"]K\x01a".to_vec();
        for _ in 0..40 {
            bomb.extend(b"q\x00h\x00\x86");
        }
        bomb.push(b'.');
        assert!(err(&bomb).contains("copies more"));
    }

    #[test]
    fn the_memo_holds_references_and_dicts_keep_one_entry_per_key_as_python() {
        // l = []; memo; (l, l) after appending 1 through the memo's name: both see [1]
        let shared = unpickle(b"]q\x00h\x00K\x01a\x86.", 0).unwrap().value;
        let one = Value::List(vec![Value::Int(1)]);
        assert_eq!(shared, Value::Tuple(vec![one.clone(), one]));
        // {'a': 1, 'b': 2, 'a': 3} is {'a': 3, 'b': 2}; 1, 1.0 and True are one key
        let d = unpickle(b"}(X\x01\x00\x00\x00aK\x01X\x01\x00\x00\x00bK\x02X\x01\x00\x00\x00aK\x03u.", 0).unwrap();
        assert_eq!(d.value.get("a"), Some(&Value::Int(3)));
        assert!(matches!(&d.value, Value::Dict(items) if items.len() == 2));
        let n = unpickle(b"}(K\x01K\x01\x88K\x02G?\xf0\x00\x00\x00\x00\x00\x00K\x03u.", 0).unwrap().value;
        assert_eq!(n, Value::Dict(vec![(Value::Int(1), Value::Int(3))]));
        assert!(err(b"}(]K\x01u.").contains("cannot hash"));
        // a list that contains itself cannot become a tree
        assert!(err(b"]q\x00h\x00a.").contains("contains itself"));
    }

    #[test]
    fn large_strings_stay_out_of_the_memo() {
        // (b, b) where b is 2 MiB of bytes memoised then fetched back: refused; used once: kept.
        let mut p = b"\x80\x03B\x00\x00\x20\x00".to_vec();
        p.extend(vec![7u8; 2 << 20]);
        let once = [p.clone(), b"q\x00\x85.".to_vec()].concat();
        match unpickle(&once, 0).unwrap().value {
            Value::Tuple(t) => assert!(matches!(&t[0], Value::Bytes(b) if b.len() == 2 << 20)),
            other => panic!("{other:?}"),
        }
        let twice = [p, b"q\x00h\x00\x86.".to_vec()].concat();
        assert!(err(&twice).contains("refers back to a string or bytes over"));
    }
}
