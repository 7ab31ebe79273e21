//! A bounded pickle virtual machine (protocols 0-5 as PyTorch uses them) that builds inert values.
//! GLOBALs are checked against the allow-list as they are read; calls go through `allow::call`.

use super::allow::{self, Policy};
use super::value::Value;
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

/// Strings and bytes from this size on are not kept in the memo: array data (BYOL's numpy arrays
/// travel as large latin-1 strings) would otherwise be held several times over. Python's picklers
/// never refer back to them (each is a fresh object); a pickle that does is refused.
const ELIDE_AT: usize = 1 << 20;
const ELIDED: &str = "<large string left out of the memo>";

fn elide_large(v: Value) -> Value {
    let big = |n: usize| n >= ELIDE_AT;
    let elided = || Value::Object { class: ELIDED.to_string(), args: Vec::new(), state: None };
    match v {
        Value::Str(s) if big(s.len()) => elided(),
        Value::Bytes(b) if big(b.len()) => elided(),
        Value::List(xs) => Value::List(xs.into_iter().map(elide_large).collect()),
        Value::Tuple(xs) => Value::Tuple(xs.into_iter().map(elide_large).collect()),
        Value::Set(xs) => Value::Set(xs.into_iter().map(elide_large).collect()),
        Value::Dict(items) => Value::Dict(items.into_iter().map(|(k, v)| (elide_large(k), elide_large(v))).collect()),
        Value::Object { class, args, state } => Value::Object {
            class,
            args: args.into_iter().map(elide_large).collect(),
            state: state.map(|s| Box::new(elide_large(*s))),
        },
        other => other,
    }
}

fn holds_elided(v: &Value) -> bool {
    matches!(v, Value::Object { class, .. } if class == ELIDED) || v.children().into_iter().any(holds_elided)
}

struct Vm<'a> {
    policy: Policy,
    data: &'a [u8],
    pos: usize,
    stack: Vec<Value>,
    marks: Vec<usize>,
    memo: HashMap<u32, Value>,
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

    fn push(&mut self, v: Value) -> Result<()> {
        if self.stack.len() >= MAX_STACK {
            bail!("pickle stack exceeds {MAX_STACK} items");
        }
        self.stack.push(v);
        Ok(())
    }
    fn pop(&mut self) -> Result<Value> {
        if self.marks.last().is_some_and(|&m| m >= self.stack.len()) {
            bail!("pickle pops past a MARK");
        }
        self.stack.pop().ok_or_else(|| anyhow!("pickle stack underflow"))
    }
    fn top(&mut self) -> Result<&mut Value> {
        if self.marks.last().is_some_and(|&m| m >= self.stack.len()) {
            bail!("pickle reads past a MARK");
        }
        self.stack.last_mut().ok_or_else(|| anyhow!("pickle stack underflow"))
    }
    fn pop_mark(&mut self) -> Result<Vec<Value>> {
        let m = self.marks.pop().ok_or_else(|| anyhow!("pickle uses a MARK that was never set"))?;
        Ok(self.stack.split_off(m))
    }
    fn top_copy(&mut self) -> Result<Value> {
        let budget = self.copy_budget;
        let top = self.top()?;
        let w = top.weight(budget);
        if w >= budget {
            bail!("pickle copies more shared values than its size allows");
        }
        let v = top.clone();
        self.copy_budget -= w;
        Ok(v)
    }
    fn memo_get(&mut self, idx: u64) -> Result<()> {
        let found = u32::try_from(idx).ok().and_then(|i| self.memo.get(&i));
        let found = found.ok_or_else(|| anyhow!("memo entry {idx} does not exist"))?;
        if holds_elided(found) {
            bail!("pickle refers back to a string or bytes over {ELIDE_AT} bytes, which is not supported");
        }
        let w = found.weight(self.copy_budget);
        if w >= self.copy_budget {
            bail!("pickle copies more shared values than its size allows");
        }
        let v = found.clone();
        self.copy_budget -= w;
        self.push(v)
    }
    fn memo_put(&mut self, idx: u64) -> Result<()> {
        let idx = u32::try_from(idx).map_err(|_| anyhow!("memo index {idx} is too large"))?;
        if self.memo.len() >= MAX_MEMO && !self.memo.contains_key(&idx) {
            bail!("pickle memo exceeds {MAX_MEMO} entries");
        }
        let v = self.top_copy()?;
        self.memo.insert(idx, elide_large(v));
        Ok(())
    }
    fn global(&mut self, module: &str, name: &str) -> Result<()> {
        let full = format!("{module}.{name}");
        if !allow::is_allowed(&full, self.policy) {
            bail!("refusing GLOBAL {full}: it is not on the allow-list");
        }
        self.globals.insert(full.clone());
        self.push(Value::Global(full))
    }
    fn nested(&self, v: Value) -> Result<Value> {
        if v.deeper_than(MAX_DEPTH) {
            bail!("pickle nests values deeper than {MAX_DEPTH} levels");
        }
        Ok(v)
    }
    fn long(&mut self, bytes: &[u8]) -> Result<Value> {
        if bytes.len() > MAX_LONG_BYTES {
            bail!("integer of {} bytes exceeds the {MAX_LONG_BYTES}-byte limit", bytes.len());
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
    fn set_items(&mut self, items: Vec<Value>) -> Result<()> {
        if !items.len().is_multiple_of(2) {
            bail!("SETITEMS with an odd number of items");
        }
        let mut pairs = Vec::new();
        let mut it = items.into_iter();
        while let (Some(k), Some(v)) = (it.next(), it.next()) {
            pairs.push((self.nested(k)?, self.nested(v)?));
        }
        match self.top()? {
            Value::Dict(d) => d.extend(pairs),
            other => bail!("SETITEM(S) on a {}, not a dict", other.kind()),
        }
        Ok(())
    }
    fn append(&mut self, items: Vec<Value>) -> Result<()> {
        let items = items.into_iter().map(|v| self.nested(v)).collect::<Result<Vec<_>>>()?;
        match self.top()? {
            Value::List(l) => l.extend(items),
            other => bail!("APPEND(S) on a {}, not a list", other.kind()),
        }
        Ok(())
    }
    fn call(&mut self, callee: Value, args: Value) -> Result<()> {
        let Value::Tuple(args) = args else {
            bail!("a call with {} arguments instead of a tuple", args.kind());
        };
        let v = match callee {
            Value::Global(g) => allow::call(&g, args)?,
            Value::Object { class, args: class_args, .. } if class == allow::NAMEDTUPLE => {
                allow::new_namedtuple(&class_args, args)?
            }
            other => bail!("REDUCE/NEWOBJ on a {}, not an allowed global", other.kind()),
        };
        let v = self.nested(v)?;
        self.push(v)
    }
    fn build(&mut self, state: Value) -> Result<()> {
        let state = self.nested(state)?;
        match self.top()? {
            Value::Object { state: slot, .. } => *slot = Some(Box::new(state)),
            // OrderedDict attributes (`_metadata`) and tensor state carry nothing we use.
            Value::Dict(_) | Value::Tensor(_) => {}
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
                return Ok(Some(v));
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
                let v = self.top_copy()?;
                self.push(v)?;
            }
            b'N' => self.push(Value::None)?,
            0x88 => self.push(Value::Bool(true))?,
            0x89 => self.push(Value::Bool(false))?,
            b'J' => {
                let v = self.u32()? as i32;
                self.push(Value::Int(v as i64))?
            }
            b'K' => {
                let v = self.u8()?;
                self.push(Value::Int(v as i64))?
            }
            b'M' => {
                let v = self.u16()?;
                self.push(Value::Int(v as i64))?
            }
            b'I' => {
                let v = match self.line()? {
                    "00" => Value::Bool(false),
                    "01" => Value::Bool(true),
                    s => Value::Int(s.parse().map_err(|_| anyhow!("INT argument {s:?} is not an integer"))?),
                };
                self.push(v)?
            }
            b'L' => {
                let s = self.line()?;
                let n = s
                    .trim_end_matches('L')
                    .parse()
                    .map_err(|_| anyhow!("LONG argument {s:?} is not a 64-bit integer"))?;
                self.push(Value::Int(n))?
            }
            b'F' => {
                let s = self.line()?;
                self.push(Value::Float(s.parse().map_err(|_| anyhow!("FLOAT argument {s:?} is not a number"))?))?
            }
            0x8a => {
                let n = self.u8()? as usize;
                let b = self.take(n)?;
                let v = self.long(b)?;
                self.push(v)?
            }
            0x8b => {
                let n = self.u32()? as usize;
                if n > MAX_LONG_BYTES {
                    bail!("integer of {n} bytes exceeds the {MAX_LONG_BYTES}-byte limit");
                }
                let b = self.take(n)?;
                let v = self.long(b)?;
                self.push(v)?
            }
            b'G' => {
                let b = self.take(8)?;
                self.push(Value::Float(f64::from_be_bytes(b.try_into()?)))?
            }
            b'X' => {
                let n = self.u32()?;
                let v = self.utf8(n as u64)?;
                self.push(v)?
            }
            0x8c => {
                let n = self.u8()?;
                let v = self.utf8(n as u64)?;
                self.push(v)?
            }
            0x8d => {
                let n = self.u64()?;
                let v = self.utf8(n)?;
                self.push(v)?
            }
            b'T' | b'B' => {
                let n = self.u32()?;
                let v = self.bytes(n as u64)?;
                self.push(v)?
            }
            b'U' | b'C' => {
                let n = self.u8()?;
                let v = self.bytes(n as u64)?;
                self.push(v)?
            }
            0x8e | 0x96 => {
                let n = self.u64()?;
                let v = self.bytes(n)?;
                self.push(v)?
            }
            b']' => self.push(Value::List(Vec::new()))?,
            b'}' => self.push(Value::Dict(Vec::new()))?,
            b')' => self.push(Value::Tuple(Vec::new()))?,
            0x8f => self.push(Value::Set(Vec::new()))?,
            b'l' => {
                let items = self.pop_mark()?.into_iter().map(|v| self.nested(v)).collect::<Result<_>>()?;
                self.push(Value::List(items))?
            }
            b't' => {
                let items = self.pop_mark()?.into_iter().map(|v| self.nested(v)).collect::<Result<_>>()?;
                self.push(Value::Tuple(items))?
            }
            0x91 => {
                let items = self.pop_mark()?.into_iter().map(|v| self.nested(v)).collect::<Result<_>>()?;
                self.push(Value::Set(items))?
            }
            b'd' => {
                let items = self.pop_mark()?;
                self.push(Value::Dict(Vec::new()))?;
                self.set_items(items)?
            }
            0x85..=0x87 => {
                let n = (op - 0x84) as usize;
                let mut items = Vec::with_capacity(n);
                for _ in 0..n {
                    let v = self.pop()?;
                    items.push(self.nested(v)?);
                }
                items.reverse();
                self.push(Value::Tuple(items))?
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
                let items = self.pop_mark()?.into_iter().map(|v| self.nested(v)).collect::<Result<Vec<_>>>()?;
                match self.top()? {
                    Value::Set(s) => s.extend(items),
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
                match (module, name) {
                    (Value::Str(m), Value::Str(n)) => self.global(&m, &n)?,
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
                if !matches!(&kwargs, Value::Dict(d) if d.is_empty()) {
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
                let v = allow::persistent_storage(pid)?;
                self.push(v)?
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
