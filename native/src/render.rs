//! `--events --format json`: the NDJSON line of a plain exec, written natively.
//!
//! Python keeps the meaning here too. For every kind of exec (its `SYSCALL` line from
//! `auid=` on, with the syscall and its ENRICHED tail: the render key) Python writes
//! once the members that depend on that text alone (the user and group objects, the
//! credentials, `event`, `keys`, names and executable: [`PIECES`] of them, each
//! exactly as `jsontext.compact` writes it) or says "not this one"; this module adds
//! what differs from event to event (time, id, pids, argv, the working directory,
//! the title, the `PATH` items, the entity id) in the same bytes as
//! `jsontext.line(ProcessEvent.to_document())`; parent.rs adds what the table knows
//! of the parent. Anything outside the strict layouts below, or a process with an
//! entry leader (a parent pid 0 or 1, or one found up its known ancestors), is not
//! rendered: the scan hands the run back to Python.
//!
//! Strings are written as Python writes a `surrogateescape`-decoded value with
//! `json.dumps(ensure_ascii=False)` and then encodes with `backslashreplace`: valid
//! UTF-8 stays as it is, each undecodable byte becomes `\udcNN`, C0 controls and
//! `"`/`\` are escaped, and U+0085, U+2028, U+2029 too (see `jsontext`).

use std::collections::HashMap;

use crate::parent::ParentPart;

/// How many pieces Python gives per render key, in this order.
pub const PIECES: usize = 15;
pub const P_ARCH: usize = 0;
pub const P_FS_USER: usize = 1;
pub const P_KEYS: usize = 2;
pub const P_LOGIN_USER: usize = 3;
pub const P_SESSION: usize = 4;
pub const P_SYSCALL: usize = 5;
pub const P_TTY: usize = 6;
pub const P_EVENT: usize = 7;
pub const P_GROUP: usize = 8;
pub const P_EXECUTABLE: usize = 9;
pub const P_IDENTITY_BEFORE_NAME: usize = 10;
pub const P_NAME: usize = 11;
pub const P_IDENTITY_AFTER_PID: usize = 12;
pub const P_IDENTITY_AFTER_TITLE: usize = 13;
pub const P_USER: usize = 14;

/// The most render keys cached, and their bytes (then the cache is emptied: Python
/// answers again).
const MAX_KEYS: usize = 4096;
const MAX_KEY_BYTES: usize = 16 << 20;
/// `MAX_ARGS` of fields.py.
const MAX_ARGS: u64 = (6 << 20) / 9;

/// Python's answers by render key: the pieces, or `None` ("hand it back").
#[derive(Default)]
pub struct RenderCache {
    answers: HashMap<Vec<u8>, Option<Vec<Vec<u8>>>>,
    key_bytes: usize,
}

impl RenderCache {
    /// The answer for `key`: `None` when Python has not answered yet.
    pub fn get(&self, key: &[u8]) -> Option<&Option<Vec<Vec<u8>>>> {
        self.answers.get(key)
    }

    /// Remember Python's answer for `key`.
    pub fn set(&mut self, key: &[u8], pieces: Option<Vec<Vec<u8>>>) {
        if self.answers.len() >= MAX_KEYS || self.key_bytes + key.len() > MAX_KEY_BYTES {
            self.clear();
        }
        if self.answers.insert(key.to_vec(), pieces).is_none() {
            self.key_bytes += key.len();
        }
    }

    /// Forget every answer (the rules changed).
    pub fn clear(&mut self) {
        self.answers.clear();
        self.key_bytes = 0;
    }
}

/// The render settings of a session (`kw_render_config`).
#[derive(Default)]
pub struct Render {
    /// Whether runs may be rendered at all (Python says per scan).
    pub on: bool,
    /// `"host":{...}`, written by Python.
    pub host: Vec<u8>,
    /// The host part of entity ids, as bytes (`host.id`, else `host.name`).
    pub host_key: Vec<u8>,
    pub cache: RenderCache,
    /// The lines rendered by the last scan.
    pub out: Vec<u8>,
}

/// The parts of one run that are rendered, as ranges of record bodies.
pub struct RunParts<'a> {
    pub time_ms: i64,
    pub sec: i64,
    pub ms: i64,
    pub serial: i64,
    /// A successful exec (a process start), or a failed one by a pid the table does
    /// not know (its entity id then names `event:<time_ms>`, as `ProcessEvent.instance`).
    pub success: bool,
    pub pid: i128,
    pub ppid: i128,
    pub exit: i128,
    /// The bodies (stripped, cut at the ENRICHED separator) of its records after
    /// the SYSCALL line, with their types.
    pub records: &'a [(&'a [u8], &'a [u8])],
    /// What the table knows of its parent (parent.rs); `None`: nothing.
    pub parent: Option<&'a ParentPart>,
}

/// Write the line of `run` with Python's `pieces` into `out`; `false` (and `out` as it
/// was) when any part is outside the strict layouts.
pub fn render(
    out: &mut Vec<u8>,
    host: &[u8],
    host_key: &[u8],
    pieces: &[Vec<u8>],
    run: &RunParts,
) -> bool {
    let start = out.len();
    if pieces.len() != PIECES || !write_line(out, host, host_key, pieces, run) {
        out.truncate(start);
        return false;
    }
    true
}

/// The members of a JSON object being written, comma-separated (its keys in order).
pub struct Members<'a> {
    out: &'a mut Vec<u8>,
    first: bool,
}

impl<'a> Members<'a> {
    pub fn open(out: &'a mut Vec<u8>) -> Members<'a> {
        out.push(b'{');
        Members { out, first: true }
    }

    fn comma(&mut self) {
        if !self.first {
            self.out.push(b',');
        }
        self.first = false;
    }

    /// A member written by Python (`"key":value`, or several joined), if any.
    pub fn piece(&mut self, piece: &[u8]) {
        if !piece.is_empty() {
            self.comma();
            self.out.extend_from_slice(piece);
        }
    }

    pub fn key(&mut self, key: &str) -> &mut Vec<u8> {
        self.comma();
        self.out.push(b'"');
        self.out.extend_from_slice(key.as_bytes());
        self.out.extend_from_slice(b"\":");
        self.out
    }

    /// `args`, `args_count` and `command_line` of an argv.
    pub fn argv(&mut self, argv: &[Vec<u8>]) {
        let o = self.key("args");
        o.push(b'[');
        for (n, arg) in argv.iter().enumerate() {
            if n > 0 {
                o.push(b',');
            }
            json_str(o, arg);
        }
        o.push(b']');
        let count = argv.len().to_string();
        self.key("args_count").extend_from_slice(count.as_bytes());
        json_str(self.key("command_line"), &argv.join(&b' '));
    }

    pub fn close(self) {
        self.out.push(b'}');
    }
}

fn write_line(
    out: &mut Vec<u8>,
    host: &[u8],
    host_key: &[u8],
    p: &[Vec<u8>],
    run: &RunParts,
) -> bool {
    let mut execve_bodies: Vec<&[u8]> = Vec::new();
    let mut cwd: Option<Option<Vec<u8>>> = None;
    let mut title: Option<Vec<u8>> = None;
    let mut paths: Vec<Path> = Vec::new();
    for &(kind, body) in run.records {
        match kind {
            b"EXECVE" => execve_bodies.push(body),
            b"CWD" => {
                if cwd.is_some() {
                    return false;
                }
                match lone_value(body, b"cwd=") {
                    Some(value) => cwd = Some(decode_untrusted(value).map(|v| v.into_owned())),
                    None => return false,
                }
            }
            b"PATH" => match path(body) {
                Some(item) => paths.push(item),
                None => return false,
            },
            b"PROCTITLE" => match lone_value(body, b"proctitle=") {
                Some(b"\"(null)\"") => title = None,
                Some(value) => title = decode_untrusted(value).map(|v| v.into_owned()),
                None => return false,
            },
            _ => return false,
        }
    }
    let argv = if execve_bodies.is_empty() {
        None
    } else {
        match argv_of_bodies(&execve_bodies) {
            Some(found) => Some(found),
            None => return false,
        }
    };
    let args: Option<&Vec<Vec<u8>>> = argv.as_ref().map(|(_, values)| values);
    let id = format!("{}.{:03}:{}", run.sec, run.ms, run.serial);

    out.extend_from_slice(b"{\"@timestamp\":\"");
    timestamp(out, run.time_ms);
    out.extend_from_slice(b"\",\"auditd\":");
    let mut auditd = Members::open(out);
    auditd.piece(&p[P_ARCH]);
    if let Some((argc, _)) = &argv {
        let argc = argc.to_string();
        auditd.key("argc").extend_from_slice(argc.as_bytes());
    }
    auditd.key("complete").extend_from_slice(b"true");
    let exit = run.exit.to_string();
    auditd.key("exit").extend_from_slice(exit.as_bytes());
    auditd.piece(&p[P_FS_USER]);
    json_str(auditd.key("id"), id.as_bytes());
    auditd.piece(&p[P_KEYS]);
    auditd.piece(&p[P_LOGIN_USER]);
    match run.parent {
        Some(parent) => {
            if let Some(id) = &parent.exec_id {
                json_str(auditd.key("parent_exec_id"), id);
            }
            json_str(auditd.key("parent_source"), &parent.source);
        }
        None => auditd
            .key("parent_source")
            .extend_from_slice(b"\"unknown\""),
    }
    if !paths.is_empty() {
        let o = auditd.key("paths");
        o.push(b'[');
        for (n, item) in paths.iter().enumerate() {
            if n > 0 {
                o.push(b',');
            }
            item.write(o);
        }
        o.push(b']');
    }
    let serial = run.serial.to_string();
    auditd.key("sequence").extend_from_slice(serial.as_bytes());
    auditd.piece(&p[P_SESSION]);
    auditd
        .key("success")
        .extend_from_slice(if run.success { b"true" } else { b"false" });
    auditd.piece(&p[P_SYSCALL]);
    auditd.piece(&p[P_TTY]);
    auditd.close();
    out.push(b',');
    out.extend_from_slice(&p[P_EVENT]);
    if !p[P_GROUP].is_empty() {
        out.push(b',');
        out.extend_from_slice(&p[P_GROUP]);
    }
    out.push(b',');
    out.extend_from_slice(host);
    out.extend_from_slice(b",\"process\":");
    let mut process = Members::open(out);
    if let Some(args) = &args {
        process.argv(args);
    }
    let pid = run.pid.to_string();
    let instance = if run.success {
        id.clone()
    } else {
        format!("event:{}", run.time_ms)
    };
    let entity = entity_id(host_key, pid.as_bytes(), instance.as_bytes());
    json_str(process.key("entity_id"), entity.as_bytes());
    process.piece(&p[P_EXECUTABLE]);
    process.piece(&p[P_IDENTITY_BEFORE_NAME]);
    process.piece(&p[P_NAME]);
    match run.parent {
        Some(parent) => process.key("parent").extend_from_slice(&parent.object),
        None => {
            let parent = format!("{{\"pid\":{}}}", run.ppid);
            process.key("parent").extend_from_slice(parent.as_bytes());
        }
    }
    process.key("pid").extend_from_slice(pid.as_bytes());
    process.piece(&p[P_IDENTITY_AFTER_PID]);
    if let Some(title) = &title {
        json_str(process.key("title"), title);
    }
    process.piece(&p[P_IDENTITY_AFTER_TITLE]);
    if let Some(Some(cwd)) = &cwd {
        json_str(process.key("working_directory"), cwd);
    }
    process.close();
    if !p[P_USER].is_empty() {
        out.push(b',');
        out.extend_from_slice(&p[P_USER]);
    }
    out.extend_from_slice(b"}\n");
    true
}

/// A raw EXECVE value, decoded (`(null)`: an empty argument).
fn decoded_arg(value: &[u8]) -> Vec<u8> {
    decode_untrusted(value)
        .map(|d| d.into_owned())
        .unwrap_or_default()
}

/// The `name=value` fields of EXECVE bodies, in order: one space apart inside a body,
/// each value as [`value_at`] reads it.
struct Fields<'a, 'b> {
    bodies: &'b [&'a [u8]],
    body: usize,
    at: usize,
}

impl<'a, 'b> Fields<'a, 'b> {
    /// The next field; `Some(None)` past the last body; `None` off the layout.
    fn next_field(&mut self) -> Option<Option<(&'a [u8], &'a [u8])>> {
        loop {
            let body = match self.bodies.get(self.body) {
                Some(body) => *body,
                None => return Some(None),
            };
            if self.at >= body.len() {
                if body.is_empty() {
                    return None;
                }
                self.body += 1;
                self.at = 0;
                continue;
            }
            let text = &body[self.at..];
            let eq = text.iter().position(|&b| b == b'=')?;
            let name = &text[..eq];
            if name.is_empty()
                || !name
                    .iter()
                    .all(|&b| b.is_ascii_alphanumeric() || b"_[]".contains(&b))
            {
                return None;
            }
            let len = value_at(&text[eq + 1..])?;
            let value = &text[eq + 1..eq + 1 + len];
            let end = eq + 1 + len;
            self.at += end;
            if end < text.len() {
                // One space, then another field.
                if text[end] != b' ' || end + 1 == text.len() {
                    return None;
                }
                self.at += 1;
            }
            return Some(Some((name, value)));
        }
    }
}

/// `argv_from_execve` of EXECVE bodies in the kernel's layout: the first starts with
/// `argc=N`, then come `a0` ... `a<N-1>` in order, each a plain `aI=V`, or `aI_len=L`
/// followed by the chunks `aI[0]=C0 aI[1]=C1 ...` (over any number of bodies; all
/// quoted or all unquoted), and nothing else. The argc and the decoded argv; `None`
/// for any other layout (Python decides).
pub fn argv_of_bodies(bodies: &[&[u8]]) -> Option<(u64, Vec<Vec<u8>>)> {
    let first = bodies.first()?;
    let rest = first.strip_prefix(b"argc=")?;
    let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
    if digits == 0 || digits > 7 {
        return None;
    }
    let argc: u64 = std::str::from_utf8(&rest[..digits]).ok()?.parse().ok()?;
    if argc > MAX_ARGS {
        return None;
    }
    let mut at = b"argc=".len() + digits;
    if at < first.len() {
        if first[at] != b' ' || at + 1 == first.len() {
            return None;
        }
        at += 1;
    }
    let mut fields = Fields {
        bodies,
        body: 0,
        at,
    };
    let mut values = Vec::with_capacity(argc.min(4096) as usize);
    let mut field = fields.next_field()?;
    for index in 0..argc {
        let (name, value) = field?;
        let plain = format!("a{}", index);
        if name == plain.as_bytes() {
            values.push(decoded_arg(value));
            field = fields.next_field()?;
            continue;
        }
        if name != format!("{}_len", plain).as_bytes() {
            return None;
        }
        // The chunks, joined as `argv_from_execve` joins them.
        let mut joined = Vec::new();
        let mut quoted = None;
        let mut chunk = 0u64;
        loop {
            field = fields.next_field()?;
            let (name, value) = match field {
                Some(found) => found,
                None => break,
            };
            if name != format!("{}[{}]", plain, chunk).as_bytes() {
                break;
            }
            let is_quoted = value.first() == Some(&b'"');
            if quoted.map_or(false, |q| q != is_quoted) {
                return None;
            }
            quoted = Some(is_quoted);
            joined.extend_from_slice(if is_quoted {
                &value[1..value.len() - 1]
            } else {
                value
            });
            chunk += 1;
        }
        match quoted {
            None => return None,
            Some(true) => values.push(joined),
            Some(false) => values.push(decoded_arg(&joined)),
        }
    }
    if field.is_some() {
        return None;
    }
    Some((argc, values))
}

/// `argv_of_execve_bodies` of EXECVE bodies joined by `\n` (as the table keeps them),
/// in the layout of [`argv_of_bodies`]; `None` for any other.
pub fn argv_of_joined(raw: &[u8]) -> Option<Vec<Vec<u8>>> {
    let bodies: Vec<&[u8]> = raw.split(|&b| b == b'\n').collect();
    argv_of_bodies(&bodies).map(|(_, values)| values)
}

/// `decode_untrusted` of fields.py: `None` for `(null)`/`(none)`; a quoted value's
/// content; upper- or lower-case hex of even length, decoded; else the raw bytes.
pub fn decode_untrusted(raw: &[u8]) -> Option<std::borrow::Cow<'_, [u8]>> {
    use std::borrow::Cow;
    if raw == b"(null)" || raw == b"(none)" {
        return None;
    }
    if raw.first() == Some(&b'"') {
        if raw.len() >= 2 && raw.last() == Some(&b'"') {
            return Some(Cow::Borrowed(&raw[1..raw.len() - 1]));
        }
        return Some(Cow::Borrowed(&raw[1..]));
    }
    if raw.len() % 2 == 0 {
        let mut decoded = Vec::with_capacity(raw.len() / 2);
        for pair in raw.chunks(2) {
            match (hex_value(pair[0]), hex_value(pair[1])) {
                (Some(hi), Some(lo)) => decoded.push(hi << 4 | lo),
                _ => return Some(Cow::Borrowed(raw)),
            }
        }
        return Some(Cow::Owned(decoded));
    }
    Some(Cow::Borrowed(raw))
}

fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// A value as `parse_fields` reads it at the start of `text`: quoted up to the next
/// quote, or a token up to the next space (not starting with a quote or apostrophe,
/// holding none); its length. `None` for anything else (an open quote, an empty value).
fn value_at(text: &[u8]) -> Option<usize> {
    match text.first()? {
        b'"' => {
            let close = text[1..].iter().position(|&b| b == b'"')?;
            Some(close + 2)
        }
        _ => {
            let end = text.iter().position(|&b| b == b' ').unwrap_or(text.len());
            let token = &text[..end];
            if token.is_empty() || token.iter().any(|&b| b == b'"' || b == b'\'') {
                return None;
            }
            Some(end)
        }
    }
}

/// The value of a body that is exactly `name=value` (CWD, PROCTITLE).
fn lone_value<'a>(body: &'a [u8], name: &[u8]) -> Option<&'a [u8]> {
    let rest = body.strip_prefix(name)?;
    let len = value_at(rest)?;
    if len != rest.len() {
        return None;
    }
    Some(rest)
}

/// One `PATH` record's item, as `_KERNEL_PATH` of events.py reads it.
struct Path<'a> {
    item: u64,
    name: Option<Vec<u8>>,
    /// inode, dev, mode: present together.
    node: Option<(u64, &'a [u8], &'a [u8])>,
    nametype: &'a [u8],
}

impl<'a> Path<'a> {
    /// `path_doc`: keys sorted.
    fn write(&self, o: &mut Vec<u8>) {
        let mut m = Members::open(o);
        if let Some((inode, dev, _)) = &self.node {
            json_str(m.key("dev"), dev);
            m.key("inode")
                .extend_from_slice(inode.to_string().as_bytes());
        }
        m.key("item")
            .extend_from_slice(self.item.to_string().as_bytes());
        if let Some((_, _, mode)) = &self.node {
            json_str(m.key("mode"), mode);
        }
        if let Some(name) = &self.name {
            json_str(m.key("name"), name);
        }
        json_str(m.key("nametype"), self.nametype);
        m.close();
    }
}

/// A run of bytes of one class at the start of `text`, at least one; its length.
fn run_of(text: &[u8], class: fn(u8) -> bool) -> Option<usize> {
    let n = text.iter().take_while(|&&b| class(b)).count();
    if n == 0 {
        None
    } else {
        Some(n)
    }
}

fn digit(b: u8) -> bool {
    b.is_ascii_digit()
}

fn lower_hex(b: u8) -> bool {
    matches!(b, b'0'..=b'9' | b'a'..=b'f')
}

fn upper_hex(b: u8) -> bool {
    matches!(b, b'0'..=b'9' | b'A'..=b'F')
}

fn octal(b: u8) -> bool {
    matches!(b, b'0'..=b'7')
}

fn nametype_byte(b: u8) -> bool {
    b.is_ascii_uppercase() || b == b'_'
}

struct Reader<'a> {
    text: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn lit(&mut self, lit: &[u8]) -> Option<()> {
        if self.text[self.at..].starts_with(lit) {
            self.at += lit.len();
            Some(())
        } else {
            None
        }
    }

    fn class(&mut self, class: fn(u8) -> bool) -> Option<&'a [u8]> {
        let n = run_of(&self.text[self.at..], class)?;
        let found = &self.text[self.at..self.at + n];
        self.at += n;
        Some(found)
    }

    /// `[0-9a-f]+:[0-9a-f]+`
    fn dev(&mut self) -> Option<&'a [u8]> {
        let start = self.at;
        self.class(lower_hex)?;
        self.lit(b":")?;
        self.class(lower_hex)?;
        Some(&self.text[start..self.at])
    }

    fn number(&mut self) -> Option<u64> {
        let digits = self.class(digit)?;
        if digits.len() > 19 {
            return None;
        }
        std::str::from_utf8(digits).ok()?.parse().ok()
    }

    fn done(&self) -> bool {
        self.at == self.text.len()
    }
}

/// `_KERNEL_PATH` of events.py, in full (`fullmatch`).
fn path(body: &[u8]) -> Option<Path<'_>> {
    let mut r = Reader { text: body, at: 0 };
    r.lit(b"item=")?;
    let item = r.number()?;
    r.lit(b" name=")?;
    let rest = &body[r.at..];
    let name_raw: &[u8] = if rest.first() == Some(&b'"') {
        let close = rest[1..].iter().position(|&b| b == b'"')?;
        &rest[..close + 2]
    } else if rest.starts_with(b"(null)") {
        &rest[..6]
    } else {
        &rest[..run_of(rest, upper_hex)?]
    };
    r.at += name_raw.len();
    r.lit(b" ")?;
    let mut node = None;
    if r.text[r.at..].starts_with(b"inode=") {
        r.lit(b"inode=")?;
        let inode = r.number()?;
        r.lit(b" dev=")?;
        let dev = r.dev()?;
        r.lit(b" mode=")?;
        let mode = r.class(octal)?;
        r.lit(b" ouid=")?;
        r.class(digit)?;
        r.lit(b" ogid=")?;
        r.class(digit)?;
        r.lit(b" rdev=")?;
        r.dev()?;
        r.lit(b" ")?;
        node = Some((inode, dev, mode));
    }
    r.lit(b"nametype=")?;
    let nametype = r.class(nametype_byte)?;
    if !r.done() {
        r.lit(b" cap_fp=")?;
        r.class(lower_hex)?;
        r.lit(b" cap_fi=")?;
        r.class(lower_hex)?;
        r.lit(b" cap_fe=")?;
        r.class(digit)?;
        r.lit(b" cap_fver=")?;
        r.class(lower_hex)?;
        if !r.done() {
            r.lit(b" cap_frootid=")?;
            let _ = r.lit(b"-");
            r.class(digit)?;
        }
    }
    if !r.done() {
        return None;
    }
    Some(Path {
        item,
        name: decode_untrusted(name_raw).map(|n| n.to_vec()),
        node,
        nametype,
    })
}

/// `bytes` as a JSON string the way Python writes its `surrogateescape` text.
pub fn json_str(out: &mut Vec<u8>, bytes: &[u8]) {
    out.push(b'"');
    let mut rest = bytes;
    loop {
        match std::str::from_utf8(rest) {
            Ok(text) => {
                escape_utf8(out, text.as_bytes());
                break;
            }
            Err(error) => {
                let good = error.valid_up_to();
                escape_utf8(out, &rest[..good]);
                let bad = error.error_len().unwrap_or(rest.len() - good);
                for &b in &rest[good..good + bad] {
                    out.extend_from_slice(b"\\udc");
                    push_hex2(out, b);
                }
                rest = &rest[good + bad..];
            }
        }
    }
    out.push(b'"');
}

fn push_hex2(out: &mut Vec<u8>, b: u8) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    out.push(DIGITS[usize::from(b >> 4)]);
    out.push(DIGITS[usize::from(b & 15)]);
}

/// Valid UTF-8 `text`, escaped as `json.dumps` and `jsontext` escape it.
fn escape_utf8(out: &mut Vec<u8>, text: &[u8]) {
    let mut i = 0;
    let mut copied = 0;
    while i < text.len() {
        let b = text[i];
        let escape: Option<&[u8]> = match b {
            b'"' => Some(b"\\\""),
            b'\\' => Some(b"\\\\"),
            b'\n' => Some(b"\\n"),
            b'\r' => Some(b"\\r"),
            b'\t' => Some(b"\\t"),
            0x08 => Some(b"\\b"),
            0x0c => Some(b"\\f"),
            0xc2 if text.get(i + 1) == Some(&0x85) => Some(b"\\u0085"),
            0xe2 if text.get(i + 1) == Some(&0x80) && text.get(i + 2) == Some(&0xa8) => {
                Some(b"\\u2028")
            }
            0xe2 if text.get(i + 1) == Some(&0x80) && text.get(i + 2) == Some(&0xa9) => {
                Some(b"\\u2029")
            }
            _ => None,
        };
        if let Some(escape) = escape {
            out.extend_from_slice(&text[copied..i]);
            out.extend_from_slice(escape);
            i += match b {
                0xc2 => 2,
                0xe2 => 3,
                _ => 1,
            };
            copied = i;
        } else if b < 0x20 {
            out.extend_from_slice(&text[copied..i]);
            out.extend_from_slice(b"\\u00");
            push_hex2(out, b);
            i += 1;
            copied = i;
        } else {
            i += 1;
        }
    }
    out.extend_from_slice(&text[copied..]);
}

/// `format_timestamp` of events.py: `YYYY-MM-DDTHH:MM:SS.mmmZ` (UTC), for a time the
/// scan takes (0 to year 9999).
pub fn timestamp(out: &mut Vec<u8>, time_ms: i64) {
    let ms = time_ms.rem_euclid(1000);
    let secs = time_ms.div_euclid(1000);
    let days = secs.div_euclid(86_400);
    let day_secs = secs.rem_euclid(86_400);
    // Days to a civil date (proleptic Gregorian), after Howard Hinnant's algorithm.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let text = format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        year,
        month,
        day,
        day_secs / 3600,
        day_secs / 60 % 60,
        day_secs % 60,
        ms
    );
    out.extend_from_slice(text.as_bytes());
}

/// `entity_id` of identity.py: `base64url(sha256(host NUL pid NUL instance)[:18])`.
pub fn entity_id(host: &[u8], pid: &[u8], instance: &[u8]) -> String {
    let mut data = Vec::with_capacity(host.len() + pid.len() + instance.len() + 2);
    data.extend_from_slice(host);
    data.push(0);
    data.extend_from_slice(pid);
    data.push(0);
    data.extend_from_slice(instance);
    let digest = sha256(&data);
    base64url(&digest[..18])
}

fn base64url(data: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::with_capacity(data.len() / 3 * 4 + 4);
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = u32::from(b[0]) << 16 | u32::from(b[1]) << 8 | u32::from(b[2]);
        let chars = chunk.len() + 1;
        for k in 0..4 {
            if k < chars {
                out.push(char::from(ALPHABET[(n >> (18 - 6 * k) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

const K: [u32; 64] = [
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
];

/// SHA-256 (FIPS 180-4) of `data`.
pub fn sha256(data: &[u8]) -> [u8; 32] {
    let mut h: [u32; 8] = [
        0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab,
        0x5be0cd19,
    ];
    let mut message = data.to_vec();
    let bits = (data.len() as u64).wrapping_mul(8);
    message.push(0x80);
    while message.len() % 64 != 56 {
        message.push(0);
    }
    message.extend_from_slice(&bits.to_be_bytes());
    let mut w = [0u32; 64];
    for block in message.chunks(64) {
        for (t, word) in block.chunks(4).enumerate() {
            w[t] = u32::from_be_bytes([word[0], word[1], word[2], word[3]]);
        }
        for t in 16..64 {
            let s0 = w[t - 15].rotate_right(7) ^ w[t - 15].rotate_right(18) ^ (w[t - 15] >> 3);
            let s1 = w[t - 2].rotate_right(17) ^ w[t - 2].rotate_right(19) ^ (w[t - 2] >> 10);
            w[t] = w[t - 16]
                .wrapping_add(s0)
                .wrapping_add(w[t - 7])
                .wrapping_add(s1);
        }
        let [mut a, mut b, mut c, mut d, mut e, mut f, mut g, mut hh] = h;
        for t in 0..64 {
            let s1 = e.rotate_right(6) ^ e.rotate_right(11) ^ e.rotate_right(25);
            let ch = (e & f) ^ (!e & g);
            let t1 = hh
                .wrapping_add(s1)
                .wrapping_add(ch)
                .wrapping_add(K[t])
                .wrapping_add(w[t]);
            let s0 = a.rotate_right(2) ^ a.rotate_right(13) ^ a.rotate_right(22);
            let maj = (a & b) ^ (a & c) ^ (b & c);
            let t2 = s0.wrapping_add(maj);
            hh = g;
            g = f;
            f = e;
            e = d.wrapping_add(t1);
            d = c;
            c = b;
            b = a;
            a = t1.wrapping_add(t2);
        }
        for (slot, value) in h.iter_mut().zip([a, b, c, d, e, f, g, hh]) {
            *slot = slot.wrapping_add(value);
        }
    }
    let mut digest = [0u8; 32];
    for (n, word) in h.iter().enumerate() {
        digest[4 * n..4 * n + 4].copy_from_slice(&word.to_be_bytes());
    }
    digest
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{:02x}", b)).collect()
    }

    #[test]
    fn sha256_known_answers() {
        assert_eq!(
            hex(&sha256(b"")),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(
            hex(&sha256(b"abc")),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        let long = b"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
        assert_eq!(
            hex(&sha256(long)),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"
        );
    }

    #[test]
    fn timestamps() {
        let mut out = Vec::new();
        timestamp(&mut out, 1_717_000_140_916);
        assert_eq!(out, b"2024-05-29T16:29:00.916Z");
        out.clear();
        timestamp(&mut out, 0);
        assert_eq!(out, b"1970-01-01T00:00:00.000Z");
        out.clear();
        timestamp(&mut out, 253_402_300_799_999);
        assert_eq!(out, b"9999-12-31T23:59:59.999Z");
    }

    #[test]
    fn strings_escape_as_python_writes_them() {
        let mut out = Vec::new();
        json_str(
            &mut out,
            b"a\"b\\c\n\x01\x7f\xff\xc3\xa9\xc2\x85\xe2\x80\xa8",
        );
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "\"a\\\"b\\\\c\\n\\u0001\u{7f}\\udcffé\\u0085\\u2028\""
        );
    }

    #[test]
    fn execve_bodies_strictly() {
        let argv = |bodies: &[&[u8]]| argv_of_bodies(bodies);
        let (argc, values) = argv(&[b"argc=2 a0=\"ls\" a1=2D6C"]).unwrap();
        assert_eq!(argc, 2);
        assert_eq!(values, vec![b"ls".to_vec(), b"-l".to_vec()]);
        assert!(argv(&[b"argc=2 a0=\"ls\""]).is_none());
        assert!(argv(&[b"argc=1 a0=\"x\"y"]).is_none());
        assert!(argv(&[b"argc=1  a0=\"x\""]).is_none());
        // Split arguments: chunks over several bodies, joined, then decoded.
        let split: &[&[u8]] = &[b"argc=2 a0=\"ls\" a1_len=6 a1[0]=6162", b"a1[1]=63"];
        assert_eq!(
            argv(split).unwrap().1,
            vec![b"ls".to_vec(), b"abc".to_vec()]
        );
        let quoted: &[&[u8]] = &[b"argc=1 a0_len=2 a0[0]=\"a\"", b"a0[1]=\"b\""];
        assert_eq!(argv(quoted).unwrap().1, vec![b"ab".to_vec()]);
        assert!(argv(&[b"argc=1 a0_len=2 a0[0]=\"a\" a0[1]=62"]).is_none());
        assert!(argv(&[b"argc=1 a0_len=2 a0[1]=61"]).is_none());
        assert!(argv(&[b"argc=1 a0_len=2"]).is_none());
        assert!(argv(&[b"argc=1 a0=61", b""]).is_none());
        assert!(argv(&[b"argc=1 a0=61", b"a1=62"]).is_none());
    }

    #[test]
    fn paths_as_the_kernel_writes_them() {
        let p = path(b"item=0 name=\"/bin/ls\" inode=12 dev=fe:01 mode=0100755 ouid=0 ogid=0 rdev=00:00 nametype=NORMAL cap_fp=0 cap_fi=0 cap_fe=0 cap_fver=0 cap_frootid=0").unwrap();
        let mut out = Vec::new();
        p.write(&mut out);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "{\"dev\":\"fe:01\",\"inode\":12,\"item\":0,\"mode\":\"0100755\",\"name\":\"/bin/ls\",\"nametype\":\"NORMAL\"}"
        );
        assert!(path(b"item=0 name=(null) nametype=UNKNOWN").is_some());
        assert!(path(b"item=0 name=\"x\" nametype=NORMAL extra=1").is_none());
    }
}
