//! A restricted unpickler for PyTorch state dicts: it builds data, never runs code.
//!
//! A pickle is a program for a stack machine, and Python's `pickle.load` calls whatever global
//! it names (`os.system` included). This machine knows the opcodes of protocols 0–5 that build
//! plain data, and exactly the globals a tensor state dict uses (`collections.OrderedDict`,
//! `torch._utils._rebuild_tensor_v2` and its kin, `torch.*Storage`); any other global, and the
//! opcodes that construct arbitrary objects (`INST`, `OBJ`, `NEWOBJ`, `EXT*`), are refused with
//! an error that names them. Nothing is allocated by what the pickle claims: every object comes
//! from bytes actually present, and containers live in an arena of indices, so shared or cyclic
//! references (`BINGET`) cost nothing and drop flat. Tensor data is not in the pickle: a tensor
//! is a reference to a storage (`persistent_id`) that the caller (`torch.rs`) reads and checks.
//!
//! Why our own: `serde-pickle` has no notion of globals, `REDUCE` or persistent ids, which is
//! what a state dict is made of; candle's reader lives inside candle-core. The format is small
//! and stable, and this file is the whole of what we trust.

use anyhow::{anyhow, bail, Result};

/// A storage's element type, from `torch.FloatStorage` & co.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dtype {
    F64,
    F32,
    F16,
    Bf16,
    I64,
    I32,
    I16,
    I8,
    U8,
    Bool,
}

impl Dtype {
    pub fn size(self) -> usize {
        match self {
            Dtype::F64 | Dtype::I64 => 8,
            Dtype::F32 | Dtype::I32 => 4,
            Dtype::F16 | Dtype::Bf16 | Dtype::I16 => 2,
            Dtype::I8 | Dtype::U8 | Dtype::Bool => 1,
        }
    }

    pub fn is_float(self) -> bool {
        matches!(self, Dtype::F64 | Dtype::F32 | Dtype::F16 | Dtype::Bf16)
    }

    fn from_storage(name: &str) -> Option<Self> {
        Some(match name {
            "DoubleStorage" => Dtype::F64,
            "FloatStorage" => Dtype::F32,
            "HalfStorage" => Dtype::F16,
            "BFloat16Storage" => Dtype::Bf16,
            "LongStorage" => Dtype::I64,
            "IntStorage" => Dtype::I32,
            "ShortStorage" => Dtype::I16,
            "CharStorage" => Dtype::I8,
            "ByteStorage" => Dtype::U8,
            "BoolStorage" => Dtype::Bool,
            _ => return None,
        })
    }
}

/// The globals a state dict may name; anything else is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Global {
    OrderedDict,
    RebuildTensor,
    RebuildTensorV2,
    RebuildParameter,
    RebuildParameterWithState,
    Storage(Dtype),
}

impl Global {
    fn lookup(module: &str, name: &str) -> Result<Self> {
        Ok(match (module, name) {
            ("collections", "OrderedDict") => Global::OrderedDict,
            ("torch._utils", "_rebuild_tensor") => Global::RebuildTensor,
            ("torch._utils", "_rebuild_tensor_v2") => Global::RebuildTensorV2,
            ("torch._utils", "_rebuild_parameter") => Global::RebuildParameter,
            ("torch._utils", "_rebuild_parameter_with_state") => Global::RebuildParameterWithState,
            ("torch", s) => match Dtype::from_storage(s) {
                Some(d) => Global::Storage(d),
                None => bail!(
                    "the pickle names the global 'torch.{s}', which a tensor state dict never \
                     needs; refused (dnabert runs no code from checkpoints)"
                ),
            },
            _ => bail!(
                "the pickle names the global '{module}.{name}', which a tensor state dict never \
                 needs; refused (dnabert runs no code from checkpoints)"
            ),
        })
    }
}

/// A storage a tensor points into: `data/{key}` in a zip checkpoint, or the legacy format's
/// storage `key`, `numel` elements of `dtype`; `offset` elements in for a legacy view.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StorageRef {
    pub key: String,
    pub dtype: Dtype,
    pub numel: usize,
    pub offset: usize,
}

/// A tensor: a strided view of a storage, in elements.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TensorRef {
    pub storage: StorageRef,
    pub offset: usize,
    pub shape: Vec<usize>,
    pub stride: Vec<usize>,
}

/// A value on the stack: scalars inline, everything else an index into the arena.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Value {
    None,
    Bool(bool),
    Int(i64),
    Float(f64),
    Obj(usize),
}

#[derive(Debug)]
enum Node {
    Str(String),
    Bytes,
    Tuple(Vec<Value>),
    List(Vec<Value>),
    Dict(Vec<(Value, Value)>),
    Global(Global),
    Storage(StorageRef),
    Tensor(TensorRef),
}

/// The result of one pickle: its top object, in its arena.
pub struct Unpickled {
    arena: Vec<Node>,
    top: Value,
    /// Where the pickle's STOP ended, in the input.
    pub end: usize,
}

/// How a persistent id reads: the zip format's 5-tuple or the legacy 6-tuple with a view.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PidForm {
    Zip,
    Legacy,
}

struct Machine<'a> {
    bytes: &'a [u8],
    at: usize,
    stack: Vec<Value>,
    marks: Vec<usize>,
    memo: std::collections::HashMap<u32, Value>,
    arena: Vec<Node>,
    pids: PidForm,
}

const OPCODE_NAMES: &[(u8, &str)] = &[
    (b'i', "INST"),
    (b'o', "OBJ"),
    (0x81, "NEWOBJ"),
    (0x92, "NEWOBJ_EX"),
    (0x82, "EXT1"),
    (0x83, "EXT2"),
    (0x84, "EXT4"),
];

/// Runs the pickle that starts at `start` in `bytes`, up to its STOP.
pub fn load(bytes: &[u8], start: usize, pids: PidForm) -> Result<Unpickled> {
    let mut m = Machine {
        bytes,
        at: start,
        stack: vec![],
        marks: vec![],
        memo: Default::default(),
        arena: vec![],
        pids,
    };
    let top = m.run().map_err(|e| anyhow!("pickle byte {}: {e}", m.at))?;
    Ok(Unpickled {
        arena: m.arena,
        top,
        end: m.at,
    })
}

impl Machine<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8]> {
        let end = self
            .at
            .checked_add(n)
            .filter(|&e| e <= self.bytes.len())
            .ok_or_else(|| anyhow!("the pickle is truncated"))?;
        let s = &self.bytes[self.at..end];
        self.at = end;
        Ok(s)
    }

    fn u8(&mut self) -> Result<u8> {
        Ok(self.take(1)?[0])
    }

    fn le(&mut self, n: usize) -> Result<u64> {
        let b = self.take(n)?;
        Ok(b.iter().rev().fold(0u64, |acc, &x| (acc << 8) | x as u64))
    }

    fn line(&mut self) -> Result<String> {
        let rest = &self.bytes[self.at..];
        let n = rest
            .iter()
            .position(|&b| b == b'\n')
            .ok_or_else(|| anyhow!("the pickle is truncated (no end of line)"))?;
        let s = String::from_utf8_lossy(&rest[..n]).into_owned();
        self.at += n + 1;
        Ok(s)
    }

    /// A length read from the pickle, checked against the bytes that remain.
    fn len(&mut self, width: usize) -> Result<usize> {
        let n = self.le(width)?;
        let left = (self.bytes.len() - self.at) as u64;
        if n > left {
            bail!("a length of {n} bytes, but only {left} remain: truncated or hostile");
        }
        Ok(n as usize)
    }

    fn alloc(&mut self, node: Node) -> Value {
        self.arena.push(node);
        Value::Obj(self.arena.len() - 1)
    }

    fn pop(&mut self) -> Result<Value> {
        if self.marks.last() == Some(&self.stack.len()) {
            bail!("pop across a MARK");
        }
        self.stack.pop().ok_or_else(|| anyhow!("stack underflow"))
    }

    fn top(&self) -> Result<Value> {
        self.stack
            .last()
            .copied()
            .ok_or_else(|| anyhow!("stack underflow"))
    }

    fn pop_mark(&mut self) -> Result<Vec<Value>> {
        let m = self.marks.pop().ok_or_else(|| anyhow!("no MARK"))?;
        Ok(self.stack.split_off(m))
    }

    fn node(&self, v: Value) -> Option<&Node> {
        match v {
            Value::Obj(i) => self.arena.get(i),
            _ => None,
        }
    }

    fn str_of(&self, v: Value) -> Option<&str> {
        match self.node(v) {
            Some(Node::Str(s)) => Some(s),
            _ => None,
        }
    }

    fn int_of(&self, v: Value, what: &str) -> Result<usize> {
        match v {
            Value::Int(i) if i >= 0 => Ok(i as usize),
            Value::Bool(b) => Ok(b as usize),
            _ => bail!("{what}: expected a non-negative integer"),
        }
    }

    fn tuple_of(&self, v: Value, what: &str) -> Result<Vec<Value>> {
        match self.node(v) {
            Some(Node::Tuple(t)) => Ok(t.clone()),
            _ => bail!("{what}: expected a tuple"),
        }
    }

    fn ints_of(&self, v: Value, what: &str) -> Result<Vec<usize>> {
        self.tuple_of(v, what)?
            .into_iter()
            .map(|x| self.int_of(x, what))
            .collect()
    }

    fn extend(&mut self, target: Value, items: Vec<Value>) -> Result<()> {
        match target {
            Value::Obj(i) => match &mut self.arena[i] {
                Node::List(l) => {
                    l.extend(items);
                    Ok(())
                }
                _ => bail!("APPEND to something that is not a list"),
            },
            _ => bail!("APPEND to something that is not a list"),
        }
    }

    fn set_items(&mut self, target: Value, items: Vec<Value>) -> Result<()> {
        if !items.len().is_multiple_of(2) {
            bail!("SETITEMS with an odd number of items");
        }
        match target {
            Value::Obj(i) => match &mut self.arena[i] {
                Node::Dict(d) => {
                    d.extend(items.chunks_exact(2).map(|p| (p[0], p[1])));
                    Ok(())
                }
                _ => bail!("SETITEM on something that is not a dict"),
            },
            _ => bail!("SETITEM on something that is not a dict"),
        }
    }

    fn run(&mut self) -> Result<Value> {
        loop {
            let op = self.u8()?;
            match op {
                0x80 => {
                    let p = self.u8()?;
                    if p > 5 {
                        bail!("pickle protocol {p} is newer than 5");
                    }
                }
                0x95 => {
                    self.take(8)?; // FRAME: a length hint
                }
                b'.' => return self.pop(),
                b'(' => self.marks.push(self.stack.len()),
                b'0' => {
                    self.pop()?;
                }
                b'1' => {
                    self.pop_mark()?;
                }
                b'2' => {
                    let v = self.top()?;
                    self.stack.push(v);
                }
                b'N' => self.stack.push(Value::None),
                0x88 => self.stack.push(Value::Bool(true)),
                0x89 => self.stack.push(Value::Bool(false)),
                b'J' => {
                    let v = self.le(4)? as u32 as i32 as i64;
                    self.stack.push(Value::Int(v));
                }
                b'K' => {
                    let v = self.u8()? as i64;
                    self.stack.push(Value::Int(v));
                }
                b'M' => {
                    let v = self.le(2)? as i64;
                    self.stack.push(Value::Int(v));
                }
                0x8a => {
                    let n = self.u8()? as usize;
                    if n > 8 {
                        bail!("an integer of {n} bytes (LONG1); state dicts hold none");
                    }
                    let raw = self.le(n)?;
                    // Two's complement over n bytes.
                    let v = if n == 0 {
                        0
                    } else if n == 8 {
                        raw as i64
                    } else if raw >> (8 * n - 1) & 1 == 1 {
                        (raw as i64) - (1i64 << (8 * n))
                    } else {
                        raw as i64
                    };
                    self.stack.push(Value::Int(v));
                }
                b'I' => {
                    let s = self.line()?;
                    let v = match s.as_str() {
                        "00" => Value::Bool(false),
                        "01" => Value::Bool(true),
                        _ => Value::Int(s.trim().parse().map_err(|_| anyhow!("INT '{s}'"))?),
                    };
                    self.stack.push(v);
                }
                b'L' => {
                    let s = self.line()?;
                    let v = s.trim().trim_end_matches('L');
                    let v = v.parse().map_err(|_| anyhow!("LONG '{s}'"))?;
                    self.stack.push(Value::Int(v));
                }
                b'G' => {
                    let b = self.take(8)?;
                    let v =
                        f64::from_be_bytes(*b.first_chunk().ok_or_else(|| anyhow!("BINFLOAT"))?);
                    self.stack.push(Value::Float(v));
                }
                b'F' => {
                    let s = self.line()?;
                    let v = s.trim().parse().map_err(|_| anyhow!("FLOAT '{s}'"))?;
                    self.stack.push(Value::Float(v));
                }
                b'X' | 0x8c | 0x8d | b'T' | b'U' => {
                    let width = match op {
                        b'X' | b'T' => 4,
                        0x8d => 8,
                        _ => 1,
                    };
                    let n = self.len(width)?;
                    let s = String::from_utf8_lossy(self.take(n)?).into_owned();
                    let v = self.alloc(Node::Str(s));
                    self.stack.push(v);
                }
                b'B' | b'C' | 0x8e => {
                    let width = match op {
                        b'B' => 4,
                        0x8e => 8,
                        _ => 1,
                    };
                    let n = self.len(width)?;
                    self.take(n)?;
                    let v = self.alloc(Node::Bytes);
                    self.stack.push(v);
                }
                b')' => {
                    let v = self.alloc(Node::Tuple(vec![]));
                    self.stack.push(v);
                }
                b't' => {
                    let items = self.pop_mark()?;
                    let v = self.alloc(Node::Tuple(items));
                    self.stack.push(v);
                }
                0x85..=0x87 => {
                    let n = (op - 0x84) as usize;
                    if self.stack.len() < n + self.marks.last().copied().unwrap_or(0) {
                        bail!("stack underflow");
                    }
                    let items = self.stack.split_off(self.stack.len() - n);
                    let v = self.alloc(Node::Tuple(items));
                    self.stack.push(v);
                }
                b']' => {
                    let v = self.alloc(Node::List(vec![]));
                    self.stack.push(v);
                }
                b'l' => {
                    let items = self.pop_mark()?;
                    let v = self.alloc(Node::List(items));
                    self.stack.push(v);
                }
                b'a' => {
                    let item = self.pop()?;
                    let list = self.top()?;
                    self.extend(list, vec![item])?;
                }
                b'e' => {
                    let items = self.pop_mark()?;
                    let list = self.top()?;
                    self.extend(list, items)?;
                }
                b'}' => {
                    let v = self.alloc(Node::Dict(vec![]));
                    self.stack.push(v);
                }
                b'd' => {
                    let items = self.pop_mark()?;
                    let v = self.alloc(Node::Dict(vec![]));
                    self.set_items(v, items)?;
                    self.stack.push(v);
                }
                b's' => {
                    let value = self.pop()?;
                    let key = self.pop()?;
                    let dict = self.top()?;
                    self.set_items(dict, vec![key, value])?;
                }
                b'u' => {
                    let items = self.pop_mark()?;
                    let dict = self.top()?;
                    self.set_items(dict, items)?;
                }
                b'c' => {
                    let module = self.line()?;
                    let name = self.line()?;
                    let g = Global::lookup(&module, &name)?;
                    let v = self.alloc(Node::Global(g));
                    self.stack.push(v);
                }
                0x93 => {
                    let name = self.pop()?;
                    let module = self.pop()?;
                    let (Some(module), Some(name)) = (self.str_of(module), self.str_of(name))
                    else {
                        bail!("STACK_GLOBAL without two strings");
                    };
                    let g = Global::lookup(module, name)?;
                    let v = self.alloc(Node::Global(g));
                    self.stack.push(v);
                }
                b'R' => {
                    let args = self.pop()?;
                    let callable = self.pop()?;
                    let v = self.reduce(callable, args)?;
                    self.stack.push(v);
                }
                b'b' => {
                    // BUILD: the state of an OrderedDict (a state dict's `_metadata`) or of a
                    // tensor (its Python attributes); neither carries weights, so it is dropped.
                    let _state = self.pop()?;
                    match self.node(self.top()?) {
                        Some(Node::Dict(_) | Node::Tensor(_)) => {}
                        _ => bail!("BUILD on an object that is not a dict or a tensor"),
                    }
                }
                b'Q' => {
                    let pid = self.pop()?;
                    let v = self.persistent(pid)?;
                    self.stack.push(v);
                }
                b'P' => bail!("a text persistent id (PERSID); torch.save writes BINPERSID"),
                b'q' => {
                    let i = self.u8()? as u32;
                    self.memo.insert(i, self.top()?);
                }
                b'r' => {
                    let i = self.le(4)? as u32;
                    self.memo.insert(i, self.top()?);
                }
                b'p' => {
                    let s = self.line()?;
                    let i = s.trim().parse().map_err(|_| anyhow!("PUT '{s}'"))?;
                    self.memo.insert(i, self.top()?);
                }
                0x94 => {
                    let i = self.memo.len() as u32;
                    self.memo.insert(i, self.top()?);
                }
                b'h' | b'j' | b'g' => {
                    let i = match op {
                        b'h' => self.u8()? as u32,
                        b'j' => self.le(4)? as u32,
                        _ => {
                            let s = self.line()?;
                            s.trim().parse().map_err(|_| anyhow!("GET '{s}'"))?
                        }
                    };
                    let v = *self
                        .memo
                        .get(&i)
                        .ok_or_else(|| anyhow!("memo {i} read before it was written"))?;
                    self.stack.push(v);
                }
                _ => {
                    let name = OPCODE_NAMES
                        .iter()
                        .find(|(c, _)| *c == op)
                        .map(|(_, n)| *n)
                        .unwrap_or("unknown");
                    bail!(
                        "pickle opcode 0x{op:02x} ({name}) is not one a tensor state dict uses; refused"
                    );
                }
            }
        }
    }

    fn reduce(&mut self, callable: Value, args: Value) -> Result<Value> {
        let Some(Node::Global(g)) = self.node(callable) else {
            bail!("REDUCE on something that is not an allowed global");
        };
        let g = *g;
        let args = self.tuple_of(args, "REDUCE arguments")?;
        match g {
            Global::OrderedDict => {
                let d = self.alloc(Node::Dict(vec![]));
                match args.as_slice() {
                    [] => {}
                    [items] => {
                        let pairs = match self.node(*items) {
                            Some(Node::List(l)) => l.clone(),
                            _ => bail!("OrderedDict(...) of something that is not a list"),
                        };
                        for p in pairs {
                            let kv = self.tuple_of(p, "OrderedDict item")?;
                            if kv.len() != 2 {
                                bail!("OrderedDict item is not a pair");
                            }
                            self.set_items(d, kv)?;
                        }
                    }
                    _ => bail!("OrderedDict with {} arguments", args.len()),
                }
                Ok(d)
            }
            Global::RebuildTensor | Global::RebuildTensorV2 => {
                if args.len() < 4 {
                    bail!("_rebuild_tensor with {} arguments", args.len());
                }
                let storage = match self.node(args[0]) {
                    Some(Node::Storage(s)) => s.clone(),
                    _ => bail!("_rebuild_tensor of something that is not a storage"),
                };
                let offset = self.int_of(args[1], "storage offset")?;
                let shape = self.ints_of(args[2], "tensor size")?;
                let stride = self.ints_of(args[3], "tensor stride")?;
                if shape.len() != stride.len() {
                    bail!(
                        "a tensor of {} sizes and {} strides",
                        shape.len(),
                        stride.len()
                    );
                }
                Ok(self.alloc(Node::Tensor(TensorRef {
                    storage,
                    offset,
                    shape,
                    stride,
                })))
            }
            Global::RebuildParameter | Global::RebuildParameterWithState => match args.first() {
                Some(&t) if matches!(self.node(t), Some(Node::Tensor(_))) => Ok(t),
                _ => bail!("_rebuild_parameter of something that is not a tensor"),
            },
            Global::Storage(_) => bail!("a storage type called as a function"),
        }
    }

    fn persistent(&mut self, pid: Value) -> Result<Value> {
        let t = self.tuple_of(pid, "persistent id")?;
        let want = match self.pids {
            PidForm::Zip => 5,
            PidForm::Legacy => 6,
        };
        if t.len() != want || self.str_of(t[0]) != Some("storage") {
            bail!(
                "a persistent id that is not a ('storage', …) tuple of {want} (a tensor storage)"
            );
        }
        let dtype = match self.node(t[1]) {
            Some(Node::Global(Global::Storage(d))) => *d,
            _ => bail!("a persistent id whose storage type is not a torch storage"),
        };
        let key = self
            .str_of(t[2])
            .ok_or_else(|| anyhow!("a storage key that is not a string"))?
            .to_owned();
        let numel = self.int_of(t[4], "storage size")?;
        let mut storage = StorageRef {
            key,
            dtype,
            numel,
            offset: 0,
        };
        if self.pids == PidForm::Legacy && t[5] != Value::None {
            // A view of another storage: (view key, offset, size).
            let view = self.tuple_of(t[5], "storage view")?;
            if view.len() != 3 {
                bail!("a storage view that is not (key, offset, size)");
            }
            storage.offset = self.int_of(view[1], "storage view offset")?;
            storage.numel = self.int_of(view[2], "storage view size")?;
        }
        Ok(self.alloc(Node::Storage(storage)))
    }
}

impl Unpickled {
    fn node(&self, v: Value) -> Option<&Node> {
        match v {
            Value::Obj(i) => self.arena.get(i),
            _ => None,
        }
    }

    fn entries(&self, v: Value) -> Option<&[(Value, Value)]> {
        match self.node(v) {
            Some(Node::Dict(d)) => Some(d),
            _ => None,
        }
    }

    fn str_of(&self, v: Value) -> Option<&str> {
        match self.node(v) {
            Some(Node::Str(s)) => Some(s),
            _ => None,
        }
    }

    /// The state dict's tensors by name, in pickle order. A dict that wraps the state dict under
    /// `state_dict` or `model` (as training scripts save them) is looked through.
    pub fn tensors(&self) -> Result<Vec<(String, TensorRef)>> {
        let mut d = self
            .entries(self.top)
            .ok_or_else(|| anyhow!("the pickle's top object is not a dict of tensors"))?;
        for wrapper in ["state_dict", "model"] {
            if let Some((_, inner)) = d.iter().find(|(k, _)| self.str_of(*k) == Some(wrapper)) {
                if let Some(e) = self.entries(*inner) {
                    d = e;
                }
            }
        }
        let mut out = vec![];
        for (k, v) in d {
            let name = self
                .str_of(*k)
                .ok_or_else(|| anyhow!("a state-dict key that is not a string"))?;
            match self.node(*v) {
                Some(Node::Tensor(t)) => out.push((name.to_owned(), t.clone())),
                _ => bail!("state-dict entry '{name}' is not a tensor"),
            }
        }
        Ok(out)
    }

    /// The top object as a list of strings (the legacy format's storage keys).
    pub fn strings(&self) -> Result<Vec<String>> {
        match self.node(self.top) {
            Some(Node::List(l)) => l
                .iter()
                .map(|v| {
                    self.str_of(*v)
                        .map(str::to_owned)
                        .ok_or_else(|| anyhow!("a storage key that is not a string"))
                })
                .collect(),
            _ => bail!("expected the list of storage keys"),
        }
    }

    /// The top object as an integer (the legacy format's protocol version).
    pub fn int(&self) -> Option<i64> {
        match self.top {
            Value::Int(i) => Some(i),
            _ => None,
        }
    }

    /// A boolean entry of the top dict (the legacy format's `little_endian`).
    pub fn flag(&self, key: &str) -> Option<bool> {
        self.entries(self.top)?
            .iter()
            .find(|(k, _)| self.str_of(*k) == Some(key))
            .and_then(|(_, v)| match v {
                Value::Bool(b) => Some(*b),
                _ => None,
            })
    }

    /// Every storage the pickle referred to (for the legacy format, whose storages follow it).
    pub fn storages(&self) -> Vec<&StorageRef> {
        self.arena
            .iter()
            .filter_map(|n| match n {
                Node::Storage(s) => Some(s),
                _ => None,
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `torch.save(OrderedDict(a=torch.zeros(2, 3)))`'s `data.pkl`, byte for byte.
    fn state_dict_pickle() -> Vec<u8> {
        let mut p =
            b"\x80\x02ccollections\nOrderedDict\nq\x00)Rq\x01X\x01\x00\x00\x00aq\x02".to_vec();
        p.extend(b"ctorch._utils\n_rebuild_tensor_v2\nq\x03((X\x07\x00\x00\x00storageq\x04");
        p.extend(b"ctorch\nFloatStorage\nq\x05X\x01\x00\x00\x000q\x06X\x03\x00\x00\x00cpuq\x07");
        p.extend(
            b"K\x06tq\x08QK\x00K\x02K\x03\x86q\tK\x03K\x01\x86q\n\x89h\x00)Rq\x0btq\x0cRq\rs.",
        );
        p
    }

    #[test]
    fn reads_a_state_dict_as_torch_save_writes_it() {
        let u = load(&state_dict_pickle(), 0, PidForm::Zip).unwrap();
        let t = u.tensors().unwrap();
        assert_eq!(t.len(), 1);
        assert_eq!(t[0].0, "a");
        assert_eq!(t[0].1.shape, vec![2, 3]);
        assert_eq!(t[0].1.stride, vec![3, 1]);
        assert_eq!(t[0].1.storage.key, "0");
        assert_eq!(t[0].1.storage.dtype, Dtype::F32);
        assert_eq!(t[0].1.storage.numel, 6);
    }

    #[test]
    fn refuses_globals_outside_the_state_dict_vocabulary() {
        // pickle.dumps of a class whose __reduce__ returns (os.system, ("echo pwned",))
        let evil = b"\x80\x02cposix\nsystem\nq\x00X\n\x00\x00\x00echo pwnedq\x01\x85q\x02Rq\x03.";
        let err = load(evil, 0, PidForm::Zip).err().unwrap().to_string();
        assert!(err.contains("'posix.system'"), "{err}");
        // The same at protocol 4 (STACK_GLOBAL, MEMOIZE, FRAME).
        let evil = b"\x80\x04\x95%\x00\x00\x00\x00\x00\x00\x00\x8c\x05posix\x94\x8c\x06system\x94\x93\x94\x8c\necho pwned\x94\x85\x94R\x94.";
        let err = load(evil, 0, PidForm::Zip).err().unwrap().to_string();
        assert!(err.contains("'posix.system'"), "{err}");
    }

    #[test]
    fn refuses_object_building_opcodes() {
        let err = load(b"(iposix\nsystem\n.", 0, PidForm::Zip)
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("INST"), "{err}");
    }

    #[test]
    fn lengths_beyond_the_input_are_refused_before_allocating() {
        // BINUNICODE8 claiming 2^62 bytes.
        let mut p = vec![0x80, 4, 0x8d];
        p.extend(&(1u64 << 62).to_le_bytes());
        let err = load(&p, 0, PidForm::Zip).err().unwrap().to_string();
        assert!(err.contains("only 0 remain"), "{err}");
    }

    #[test]
    fn cycles_and_shared_references_are_harmless() {
        // l = []; l.append(l); pickled: EMPTY_LIST BINPUT 0 BINGET 0 APPEND STOP
        let u = load(b"\x80\x02]q\x00h\x00a.", 0, PidForm::Zip).unwrap();
        assert!(u.tensors().is_err());
        // A truncated stream is an error, not a panic.
        let p = state_dict_pickle();
        for cut in 0..p.len() - 1 {
            assert!(load(&p[..cut], 0, PidForm::Zip).is_err(), "cut at {cut}");
        }
    }
}
