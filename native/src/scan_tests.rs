//! The scanner's acceptance: what it takes, how it counts and learns, and every way
//! it hands the position back.

use std::collections::HashSet;

use crate::gaps::{Quiet, MAX_TIME_MS};
use crate::needles::NeedleSet;
use crate::plain::{READS_ALL, READS_CAPS, READS_CWD, READS_IDS, READS_PARENT, READS_PARENT_LINE};
use crate::scan::{scan, scan_until};
use crate::session::{Session, Settings, Stop};
use crate::verdicts::{
    EVALUATED, INODE_ALWAYS, INODE_IF_RELEVANT, LEARN_EXEC, LEARN_FORK, LEARN_OTHER,
    NEEDLE_IF_RELEVANT, NEED_ALWAYS, NEED_IF_RELEVANT,
};

const T0: i64 = 1_700_000_000_000;

fn settings() -> Settings {
    Settings {
        window_ms: 5000,
        max_entries: 65536,
        max_args_bytes: 8 << 20,
        max_lateness_ms: Some(5000),
        since_ms: None,
        until_ms: None,
        live: false,
        max_inflight: 4096,
        single_types: ["USER_CMD".as_bytes().to_vec()]
            .iter()
            .cloned()
            .collect::<HashSet<_>>(),
        fault_on: None,
    }
}

fn quiet() -> Quiet {
    Quiet::new(T0, 0, 100, T0, -1, &[])
}

fn id(time_ms: i64, serial: i64) -> String {
    format!("{}.{:03}:{}", time_ms / 1000, time_ms % 1000, serial)
}

fn syscall_line(
    time_ms: i64,
    serial: i64,
    syscall: u32,
    exit: i64,
    pid: u32,
    ppid: u32,
    comm: &str,
) -> String {
    format!(
        "type=SYSCALL msg=audit({}): arch=c000003e syscall={} success=yes exit={} a0=1 a1=2 \
a2=3 a3=0 items=2 ppid={} pid={} auid=1000 uid=1000 gid=1000 euid=1000 suid=1000 \
fsuid=1000 egid=1000 sgid=1000 fsgid=1000 tty=pts0 ses=3 comm=\"{}\" exe=\"/usr/bin/{}\" \
key=(null)\n",
        id(time_ms, serial),
        syscall,
        exit,
        ppid,
        pid,
        comm,
        comm
    )
}

fn key(syscall: u32, comm: &str) -> Vec<u8> {
    format!(
        "arch=c000003e syscall={}\0yes\0\"{}\"\0\"/usr/bin/{}\"",
        syscall, comm, comm
    )
    .into_bytes()
}

/// An exec run: SYSCALL, two EXECVE, CWD, PATH, PROCTITLE.
fn exec_run(time_ms: i64, serial: i64, pid: u32, ppid: u32, comm: &str) -> String {
    let tag = id(time_ms, serial);
    syscall_line(time_ms, serial, 59, 0, pid, ppid, comm)
        + &format!("type=EXECVE msg=audit({}): argc=2 a0=\"{}\" \n", tag, comm)
        + &format!("type=EXECVE msg=audit({}):  a1=\"-l\"\n", tag)
        + &format!("type=CWD msg=audit({}): cwd=\"/root\"\n", tag)
        + &format!(
            "type=PATH msg=audit({}): item=0 name=\"/usr/bin/{}\" inode=4242 dev=08:01\n",
            tag, comm
        )
        + &format!("type=PROCTITLE msg=audit({}): proctitle=6C73\n", tag)
}

fn session() -> Session {
    let mut s = Session::new(settings());
    for comm in ["ls", "sh", "cat"] {
        s.verdicts.set(&key(59, comm), LEARN_EXEC | EVALUATED);
        s.verdicts.set(&key(56, comm), LEARN_FORK);
        s.verdicts.set(&key(2, comm), LEARN_OTHER);
    }
    s
}

fn run(s: &mut Session, log: &str) -> Quiet {
    run_from(s, log, quiet())
}

fn run_from(s: &mut Session, log: &str, q: Quiet) -> Quiet {
    scan(s, log.as_bytes(), 0, q);
    let st = s.scan.state;
    let mut ahead = Vec::new();
    for row in s.scan.ahead.chunks(4) {
        ahead.push([row[0], row[1], row[2], row[3]]);
    }
    Quiet::new(st[0], st[1], st[2], st[3], st[4], &ahead)
}

fn stop(s: &Session) -> (usize, i32) {
    (s.scan.end, s.scan.stop)
}

#[test]
fn a_whole_exec_run_is_taken_and_learned() {
    let mut s = session();
    let log = exec_run(T0 + 10, 100, 200, 1, "ls");
    let q = run(&mut s, &log);
    assert_eq!(stop(&s), (log.len(), Stop::End as i32));
    assert_eq!((s.scan.lines, s.scan.records, s.scan.events), (6, 6, 1));
    assert_eq!(s.scan.process_events, 1);
    assert_eq!(s.scan.last_time_ms, T0 + 10);
    assert_eq!(s.scan.done, vec![(T0 + 10) / 1000, 10, 100, 10]);
    assert_eq!(
        (q.present, q.elapsed, q.expected, q.last_time_ms),
        (T0 + 10, 10, 101, T0 + 10)
    );
    let entry = s.table.latest(200).unwrap();
    assert_eq!(entry.ppid(), Some(1));
    assert_eq!(entry.since_ms(), i128::from(T0 + 10));
    // Bodies as parse_record gives them: after the header, stripped of spaces.
    assert_eq!(
        entry.args_segment(),
        Some(&b"argc=2 a0=\"ls\"\na1=\"-l\""[..])
    );
    assert_eq!(entry.exec_id(), Some(id(T0 + 10, 100).as_bytes()));
    let mut wire = Vec::new();
    entry.encode(&mut wire);
    let text = String::from_utf8_lossy(&wire);
    assert!(
        text.contains("\"ls\"\"/usr/bin/ls\""),
        "comm and exe raw: {}",
        text
    );
    assert!(text.ends_with("auid=1000 uid=1000 gid=1000 euid=1000 suid=1000 fsuid=1000 egid=1000 sgid=1000 fsgid=1000 tty=pts0 ses=3event"));
}

/// An exec that gains privileges, as the kernel writes it: BPRM_FCAPS before EXECVE.
fn fcaps_run(time_ms: i64, serial: i64, pid: u32, ppid: u32, comm: &str) -> String {
    let tag = id(time_ms, serial);
    let run = exec_run(time_ms, serial, pid, ppid, comm);
    let first = run.find('\n').unwrap() + 1;
    format!(
        "{}type=BPRM_FCAPS msg=audit({}): fver=2 fp=2000 fi=0 fe=1 old_pp=0 old_pi=0 \
old_pe=0 old_pa=0 pp=2000 pi=0 pe=2000 pa=0 frootid=0\n{}",
        &run[..first],
        tag,
        &run[first..]
    )
}

#[test]
fn an_exec_with_bprm_fcaps_before_execve_is_taken_whole() {
    let mut s = session();
    let log = fcaps_run(T0 + 10, 100, 200, 1, "ls") + &exec_run(T0 + 11, 101, 201, 200, "sh");
    let q = run(&mut s, &log);
    assert_eq!(stop(&s), (log.len(), Stop::End as i32));
    assert_eq!((s.scan.lines, s.scan.records, s.scan.events), (13, 13, 2));
    assert_eq!(q.expected, 102);
    // The argv is the EXECVE bodies' alone.
    assert_eq!(
        s.table.latest(200).unwrap().args_segment(),
        Some(&b"argc=2 a0=\"ls\"\na1=\"-l\""[..])
    );

    // BPRM_FCAPS between EXECVE lines, or of another event: not run_end's shape.
    let tag = id(T0 + 10, 100);
    let fcaps = format!("type=BPRM_FCAPS msg=audit({}): fver=2 pp=2000\n", tag);
    let split = exec_run(T0 + 10, 100, 200, 1, "ls").replacen(
        &format!("type=EXECVE msg=audit({}):  a1", tag),
        &format!("{}type=EXECVE msg=audit({}):  a1", fcaps, tag),
        1,
    );
    let other = fcaps_run(T0 + 10, 100, 200, 1, "ls").replacen(
        &format!("BPRM_FCAPS msg=audit({})", tag),
        &format!("BPRM_FCAPS msg=audit({})", id(T0 + 10, 99)),
        1,
    );
    for log in [split, other] {
        let mut s = session();
        run(&mut s, &log);
        assert_eq!(stop(&s), (0, Stop::Handback as i32));
        assert!(s.table.is_empty());
    }

    // An inode a prefilter learned, in the PATH records after EXECVE: Python's.
    let mut s = session();
    s.verdicts
        .set(&key(59, "ls"), LEARN_EXEC | EVALUATED | INODE_ALWAYS);
    s.verdicts.set_inodes(&[4242]);
    run(&mut s, &fcaps_run(T0 + 10, 100, 200, 1, "ls"));
    assert_eq!(stop(&s), (0, Stop::Handback as i32));
}

#[test]
fn a_pair_whose_events_have_bprm_fcaps_first_is_two_events() {
    let (a, b) = (id(T0, 100), id(T0 + 1, 101));
    let fcaps = |tag: &str| format!("type=BPRM_FCAPS msg=audit({}): fver=2 pp=2000\n", tag);
    let log = syscall_line(T0, 100, 59, 0, 300, 1, "ls")
        + &syscall_line(T0 + 1, 101, 59, 0, 301, 1, "cat")
        + &fcaps(&a)
        + &format!("type=EXECVE msg=audit({}): argc=1 a0=ls\n", a)
        + &fcaps(&b)
        + &format!("type=EXECVE msg=audit({}): argc=1 a0=cat\n", b)
        + &format!("type=PROCTITLE msg=audit({}): proctitle=6C73\n", a)
        + &format!("type=PROCTITLE msg=audit({}): proctitle=636174\n", b);
    let mut s = session();
    run(&mut s, &log);
    assert_eq!(stop(&s), (log.len(), 0));
    assert_eq!((s.scan.lines, s.scan.events), (8, 2));
    assert_pair_learned(&s);
}

/// pam_loginuid's LOGIN record, then the write syscall behind it under the same id.
fn login_unit(time_ms: i64, serial: i64, pid: u32) -> String {
    let tag = id(time_ms, serial);
    format!(
        "type=LOGIN msg=audit({}): pid={} uid=0 subj=unconfined old-auid=4294967295 \
auid=1000 tty=(none) old-ses=4294967295 ses=3 res=1\n",
        tag, pid
    ) + &syscall_line(time_ms, serial, 2, 4, pid, 1, "sh")
        + &format!("type=PROCTITLE msg=audit({}): proctitle=7368\n", tag)
}

#[test]
fn a_login_with_its_syscall_right_after_is_two_events_of_one_id() {
    let mut s = session();
    let tag = id(T0 + 5, 100);
    let log = login_unit(T0 + 5, 100, 700) + &format!("type=EOE msg=audit({}): \n", tag);
    let q = run(&mut s, &log);
    assert_eq!(stop(&s), (log.len(), Stop::End as i32));
    assert_eq!((s.scan.lines, s.scan.records, s.scan.events), (4, 4, 2));
    // The clock, the serial and the done set see the id once.
    assert_eq!(s.scan.done, vec![(T0 + 5) / 1000, 5, 100, 5]);
    assert_eq!(q.expected, 101);
    // The "other" entry of the write: no argv, no exec id.
    let entry = s.table.latest(700).unwrap();
    assert_eq!((entry.args_segment(), entry.exec_id()), (None, None));

    // Past a gap (its serial ahead): the same.
    let mut s = session();
    let q = run_from(&mut s, &login_unit(T0 + 5, 105, 700), quiet());
    assert_eq!((s.scan.events, s.scan.stop), (2, Stop::End as i32));
    assert_eq!(q.expected, 100);

    // An unknown verdict stops at the LOGIN, before anything is taken.
    let mut s = Session::new(settings());
    run(&mut s, &login_unit(T0 + 5, 100, 700));
    assert_eq!((stop(&s), s.scan.events), ((0, Stop::Verdict as i32), 0));
}

#[test]
fn a_login_is_handed_back_unless_its_syscall_follows_as_python_would_take_it() {
    let unit = login_unit(T0 + 5, 100, 700);
    let login = &unit[..unit.find('\n').unwrap() + 1];
    let tag = id(T0 + 5, 100);
    let cases = [
        // Alone (it waits for its syscall's records in Python's leads).
        login.to_string() + &exec_run(T0 + 6, 101, 201, 1, "ls"),
        // Its syscall's run is not whole, or of another id.
        unit.replacen("type=PROCTITLE", "type=CWD", 1),
        login.to_string() + &syscall_line(T0 + 5, 99, 2, 4, 700, 1, "sh"),
        // A run with EXECVE lines, or an exec: not what skim learns like the scan.
        unit.replacen(
            "type=PROCTITLE",
            &format!(
                "type=EXECVE msg=audit({}): argc=1 a0=sh\ntype=PROCTITLE",
                tag
            ),
            1,
        ),
        login.to_string() + &exec_run(T0 + 5, 100, 700, 1, "ls")[..],
    ];
    for log in cases.iter() {
        let mut s = session();
        run(&mut s, log);
        assert_eq!(stop(&s), (0, Stop::Handback as i32), "{}", log);
        assert!(s.table.is_empty());
    }
    // Live: the full parse reads /proc for the parent its own way.
    let mut s = session();
    s.settings.live = true;
    run(&mut s, &unit);
    assert_eq!(stop(&s), (0, Stop::Handback as i32));
    // Serials 101..=1101 seen ahead: taking 100 moves `expected` to 1102, and the
    // syscall's second look at 100 would then start a new sequence in Python.
    let ahead: Vec<[i64; 4]> = (101..=1101).map(|n| [n, T0 / 1000, 0, 0]).collect();
    let q = Quiet::new(T0, 0, 100, T0, -1, &ahead);
    let mut s = session();
    run_from(&mut s, &unit, q);
    assert_eq!(stop(&s), (0, Stop::Handback as i32));
    // A LOGIN alone of a type Python names as a single record: one event.
    let mut s = session();
    s.settings.single_types.insert(b"LOGIN".to_vec());
    run(&mut s, login);
    assert_eq!((s.scan.events, s.scan.stop), (1, Stop::End as i32));
}

#[test]
fn a_lone_login_python_names_is_taken_and_reported_as_a_lead() {
    let unit = login_unit(T0 + 5, 100, 700);
    let login = &unit[..unit.find('\n').unwrap() + 1];
    let mut s = session();
    s.settings.single_types.insert(b"LOGIN".to_vec());
    // Alone before an exec, then a LOGIN with its syscall (no lead: its run is taken).
    let log =
        login.to_string() + &exec_run(T0 + 6, 101, 201, 1, "ls") + &login_unit(T0 + 7, 102, 701);
    let q = run(&mut s, &log);
    assert_eq!(stop(&s), (log.len(), Stop::End as i32));
    assert_eq!(s.scan.events, 4);
    assert_eq!(s.scan.leads, vec![(T0 + 5) / 1000, 5, 100]);
    assert_eq!(q.expected, 103);
    // Its syscall's run later under the same id: the serial is taken, Python's.
    let late = login.to_string() + &unit[login.len()..];
    let mut s = session();
    s.settings.single_types.insert(b"LOGIN".to_vec());
    let tail = exec_run(T0 + 6, 101, 201, 1, "ls");
    let log = login.to_string() + &tail + &late[login.len()..];
    run(&mut s, &log);
    assert_eq!(stop(&s), (login.len() + tail.len(), Stop::Handback as i32));
    assert_eq!(s.scan.leads.len(), 3);
    // Its bare EOE among the next run's lines ends the lead in Python: Python's.
    let mut s = session();
    s.settings.single_types.insert(b"LOGIN".to_vec());
    let next = exec_run(T0 + 6, 101, 201, 1, "ls");
    let at = next.find("type=EXECVE").unwrap();
    let eoe = format!("type=EOE msg=audit({}): \n", id(T0 + 5, 100));
    let log = login.to_string() + &next[..at] + &eoe + &next[at..];
    run(&mut s, &log);
    assert_eq!(stop(&s), (login.len(), Stop::Handback as i32));
    // Not named: handed back, nothing reported.
    let mut s = session();
    run(&mut s, login);
    assert_eq!(
        (stop(&s), s.scan.leads.len()),
        ((0, Stop::Handback as i32), 0)
    );
}

#[test]
fn a_scan_stops_right_after_the_unit_that_reaches_the_deadline() {
    let log = exec_run(T0 + 10, 100, 200, 1, "ls")
        + &exec_run(T0 + 20, 101, 201, 1, "ls")
        + &exec_run(T0 + 30, 102, 202, 1, "ls");
    let first = exec_run(T0 + 10, 100, 200, 1, "ls").len();
    let second = first + exec_run(T0 + 20, 101, 201, 1, "ls").len();
    for (due, end, events, code) in [
        (T0 + 15, second, 2, Stop::Due),
        (T0 + 20, second, 2, Stop::Due),
        (T0 + 10, first, 1, Stop::Due),
        (i64::MIN, first, 1, Stop::Due),
        (T0 + 30, log.len(), 3, Stop::Due),
        (T0 + 31, log.len(), 3, Stop::End),
    ] {
        let mut s = session();
        scan_until(&mut s, log.as_bytes(), 0, quiet(), due);
        assert_eq!(
            (stop(&s), s.scan.events),
            ((end, code as i32), events),
            "{}",
            due
        );
    }
    // Blank lines take no event: no stop for them.
    let mut s = session();
    scan_until(&mut s, b"\n#\n", 0, quiet(), i64::MIN);
    assert_eq!(stop(&s), (3, Stop::End as i32));
}

#[test]
fn the_eoe_of_the_event_taken_before_inside_the_next_run_counts_a_line() {
    let a = exec_run(T0, 100, 200, 1, "ls");
    let b = exec_run(T0 + 1, 101, 201, 1, "cat");
    let at = b.find("type=CWD").unwrap();
    let inside = |eoe: &str| a.clone() + &b[..at] + eoe + &b[at..];
    let log = inside(&format!("type=EOE msg=audit({}): \n", id(T0, 100)));
    let mut s = session();
    let q = run(&mut s, &log);
    assert_eq!(stop(&s), (log.len(), Stop::End as i32));
    assert_eq!((s.scan.lines, s.scan.records, s.scan.events), (13, 13, 2));
    assert_eq!(q.expected, 102);
    assert!(s.table.latest(201).is_some());
    // Not the last taken event's, not bare, or with nothing taken before: Python's.
    for eoe in [
        format!("type=EOE msg=audit({}): \n", id(T0, 99)),
        format!("type=EOE msg=audit({}): x=1\n", id(T0, 100)),
    ] {
        let mut s = session();
        run(&mut s, &inside(&eoe));
        assert_eq!(stop(&s), (a.len(), Stop::Handback as i32));
    }
    let alone =
        b[..at].to_string() + &format!("type=EOE msg=audit({}): \n", id(T0, 100)) + &b[at..];
    let mut s = session();
    run(&mut s, &alone);
    assert_eq!(stop(&s), (0, Stop::Handback as i32));
}

#[test]
fn a_block_that_starts_with_the_eoe_of_the_event_taken_last_counts_a_line() {
    let a = exec_run(T0, 100, 200, 1, "ls");
    let eoe = format!("type=EOE msg=audit({}): \n", id(T0, 100));
    let next = eoe.clone() + &exec_run(T0 + 1, 101, 201, 1, "cat");
    // `drop`: what the done store forgets between the two scans.
    let two_scans = |keeping: bool, drop: bool| {
        let mut s = session();
        s.done.keeping = keeping;
        let q = run(&mut s, &a);
        let rows = s.scan.done.clone();
        s.done.extend(&rows);
        if drop {
            s.done.drop_front(1, 1, i64::MIN);
        }
        run_from(&mut s, &next, q);
        s
    };
    // While the done store holds the event (the assembler's done set does): push()
    // drops its late EOE, a line and a record.
    let s = two_scans(true, false);
    assert_eq!(stop(&s), (next.len(), Stop::End as i32));
    let lines = next.lines().count() as u64;
    assert_eq!(
        (s.scan.lines, s.scan.records, s.scan.events),
        (lines, lines, 1)
    );
    // Without the store (the assembler keeps the rows), or once it forgot the event
    // (pruned, or the done set's limit): Python's, as before.
    for s in [two_scans(false, false), two_scans(true, true)] {
        assert_eq!(stop(&s), (0, Stop::Handback as i32));
    }
    // Another event's EOE: Python's.
    let mut s = two_scans(true, false);
    let other = format!("type=EOE msg=audit({}): \n", id(T0, 99));
    run(&mut s, &other);
    assert_eq!(stop(&s), (0, Stop::Handback as i32));
}

#[test]
fn an_eoe_right_after_is_absorbed_and_comments_count_lines() {
    let mut s = session();
    let tag = id(T0, 100);
    let log = format!(
        "\n# note\n \t\n{}type=EOE msg=audit({}): \n",
        exec_run(T0, 100, 200, 1, "ls"),
        tag
    );
    run(&mut s, &log);
    assert_eq!(stop(&s), (log.len(), 0));
    assert_eq!((s.scan.lines, s.scan.records, s.scan.events), (10, 7, 1));
}

#[test]
fn an_eoe_of_another_id_is_handed_back() {
    let mut s = session();
    let run_text = exec_run(T0, 100, 200, 1, "ls");
    let log = format!("{}type=EOE msg=audit({}): \n", run_text, id(T0, 99));
    run(&mut s, &log);
    assert_eq!(stop(&s), (run_text.len(), Stop::Handback as i32));
    assert_eq!(s.scan.events, 1);
}

#[test]
fn an_unknown_verdict_stops_before_the_event() {
    let mut s = session();
    let first = exec_run(T0, 100, 200, 1, "ls");
    let log = first.clone() + &exec_run(T0, 101, 201, 1, "vim");
    let q = run(&mut s, &log);
    assert_eq!(stop(&s), (first.len(), Stop::Verdict as i32));
    assert_eq!(s.scan.key, key(59, "vim"));
    assert_eq!(s.scan.events, 1);
    s.verdicts.set(&key(59, "vim"), LEARN_EXEC | EVALUATED);
    scan(&mut s, log.as_bytes(), first.len(), q);
    assert_eq!(stop(&s), (log.len(), 0));
    assert!(s.table.contains(201));
}

#[test]
fn verdict_bits_hand_back_what_python_needs() {
    let log = exec_run(T0, 100, 200, 1, "ls");
    let cases: [(u8, Option<i64>, &[u64], bool); 8] = [
        (NEED_ALWAYS, None, &[], true),
        (NEED_IF_RELEVANT, None, &[], true),
        (NEED_IF_RELEVANT, Some(T0 + 1), &[], false), // before since: not relevant
        (INODE_ALWAYS, None, &[], false),             // no inodes known
        (INODE_ALWAYS, None, &[4242], true),
        (INODE_ALWAYS, None, &[4243], false),
        (INODE_IF_RELEVANT, Some(T0 + 1), &[4242], false),
        (INODE_IF_RELEVANT, None, &[4242], true),
    ];
    for (bits, since, inodes, handed_back) in cases.iter() {
        let mut s = session();
        s.settings.since_ms = *since;
        s.verdicts
            .set(&key(59, "ls"), LEARN_EXEC | EVALUATED | bits);
        s.verdicts.set_inodes(inodes);
        run(&mut s, &log);
        let expected = if *handed_back { (0, 1) } else { (log.len(), 0) };
        assert_eq!(
            stop(&s),
            expected,
            "bits {:#x} since {:?} inodes {:?}",
            bits,
            since,
            inodes
        );
        if !handed_back {
            assert_eq!(s.scan.process_events, u64::from(since.is_none()));
        }
    }
}

#[test]
fn a_needle_verdict_hands_back_only_a_command_line_a_needle_may_be_in() {
    // exec_run's command line is "ls -l".
    let needles: Vec<(Vec<u8>, bool)> = [("-l", false), ("LS -", true), ("-L", false), ("", false)]
        .iter()
        .map(|(t, f)| (t.as_bytes().to_vec(), *f))
        .collect();
    let cases: [(&[u32], Option<i64>, bool); 7] = [
        (&[0], None, true),
        (&[1], None, true),          // case-insensitive
        (&[2], None, false),         // case-sensitive: "-L" is not in "ls -l"
        (&[2], Some(T0 + 1), false), // not relevant: no test
        (&[0], Some(T0 + 1), false),
        (&[3], None, true), // the empty needle
        (&[], None, false),
    ];
    for (ids, since, handed_back) in cases.iter() {
        let mut s = session();
        s.settings.since_ms = *since;
        s.verdicts.set_needles(NeedleSet::new(&needles));
        s.verdicts
            .set_with_needles(
                &key(59, "ls"),
                LEARN_EXEC | EVALUATED | NEEDLE_IF_RELEVANT,
                ids,
                false,
                None,
            )
            .unwrap();
        let log = exec_run(T0, 100, 200, 1, "ls");
        run(&mut s, &log);
        // Python's: a stop asking for the run's full key (plain.rs `full_key_of`).
        let expected = if *handed_back {
            (0, Stop::Plain as i32)
        } else {
            (log.len(), 0)
        };
        assert_eq!(stop(&s), expected, "ids {:?} since {:?}", ids, since);
    }
}

#[test]
fn a_needle_verdict_hands_back_runs_without_a_plain_command_line() {
    let needles = vec![(b"zz".to_vec(), false)];
    let tag = id(T0, 100);
    let head = syscall_line(T0, 100, 59, 0, 200, 1, "ls");
    let tail = format!("type=PROCTITLE msg=audit({}): proctitle=6C73\n", tag);
    let plain = format!("type=EXECVE msg=audit({}): argc=1 a0=\"ls\"\n", tag);
    let chunked = format!(
        "type=EXECVE msg=audit({}): argc=1 a0_len=2 a0[0]=\"ls\"\n",
        tag
    );
    for (middle, empty_if_none, handed_back) in [
        (plain.as_str(), false, false),
        (chunked.as_str(), false, true),
        ("", false, true), // no EXECVE line: arguments not known
        ("", true, false), // ... or none at all (Python's _NO_ARGS)
    ] {
        let mut s = session();
        s.verdicts.set_needles(NeedleSet::new(&needles));
        s.verdicts
            .set_with_needles(
                &key(59, "ls"),
                LEARN_EXEC | EVALUATED | NEEDLE_IF_RELEVANT,
                &[0],
                empty_if_none,
                None,
            )
            .unwrap();
        let log = head.clone() + middle + &tail;
        run(&mut s, &log);
        let expected = if handed_back {
            (0, Stop::Plain as i32)
        } else {
            (log.len(), 0)
        };
        assert_eq!(stop(&s), expected, "{:?} {}", middle, empty_if_none);
    }
}

#[test]
fn until_makes_an_event_irrelevant() {
    let mut s = session();
    s.settings.until_ms = Some(T0);
    run(&mut s, &exec_run(T0, 100, 200, 1, "ls"));
    assert_eq!((s.scan.events, s.scan.process_events), (1, 0));
}

#[test]
fn fault_on_hands_the_run_back() {
    let mut s = session();
    s.settings.fault_on = Some(b"/root".to_vec());
    let log = exec_run(T0, 100, 200, 1, "ls");
    run(&mut s, &log);
    assert_eq!(stop(&s), (0, 1));
    s.settings.fault_on = Some(b"nowhere".to_vec());
    run(&mut s, &log);
    assert_eq!(stop(&s), (log.len(), 0));
}

#[test]
fn what_is_not_plain_is_handed_back() {
    let handed_back = |log: String, q: Quiet| {
        let mut s = session();
        run_from(&mut s, &log, q);
        assert_eq!(stop(&s), (0, 1), "{}", log);
        assert_eq!(s.scan.events, 0);
        assert!(s.table.is_empty());
    };
    handed_back(exec_run(T0 + 5001, 100, 200, 1, "ls"), quiet()); // a window ahead
    handed_back(exec_run(T0 - 5001, 100, 200, 1, "ls"), quiet()); // a window behind
    handed_back(exec_run(T0, 99, 200, 1, "ls"), quiet()); // behind expected
    handed_back(
        exec_run(T0, 100, 200, 1, "ls"),
        Quiet::new(T0, 0, 90, T0, 100, &[]),
    ); // done?
    handed_back(
        exec_run(T0, 105, 200, 1, "ls"),
        Quiet::new(T0, 0, 100, T0, -1, &[[105, T0 / 1000, 0, 0]]),
    ); // already ahead
    let far = MAX_TIME_MS - 1;
    handed_back(
        exec_run(MAX_TIME_MS, 100, 200, 1, "ls"),
        Quiet::new(far, 0, 100, far, -1, &[]),
    );
}

#[test]
fn malformed_or_unusual_lines_are_handed_back() {
    let good = exec_run(T0, 100, 200, 1, "ls");
    let variants = [
        good.replacen("type=SYSCALL", "node=a type=SYSCALL", 1),
        good.replacen("cwd=\"/root\"", "cwd=\"/root\"\r", 1),
        good.replacen("cwd=\"/root\"", "cwd=\"/ro\0ot\"", 1),
        good.replacen(".000:100): arch", ".000:100): arch=x", 1),
        good.replacen("type=CWD", "type=EOE", 1),
        good.replacen("type=PROCTITLE", "type=UNKNOWN[1]", 1),
        good[..good.len() - 1].to_string(), // no final newline
        good.replacen("type=EXECVE", "\ntype=EXECVE", 1), // a blank line inside
        "type=LOGIN msg=audit(1.000:1): x\n".to_string(),
    ];
    for log in variants.iter() {
        let mut s = session();
        run(&mut s, log);
        assert_eq!(s.scan.events, 0, "{:?}", log);
        assert_eq!(s.scan.stop, 1, "{:?}", log);
    }
    // A path record moved before an EXECVE: no whole run, no pair.
    let tag = id(T0, 100);
    let swapped = syscall_line(T0, 100, 59, 0, 200, 1, "ls")
        + &format!("type=PATH msg=audit({}): item=0\n", tag)
        + &format!("type=EXECVE msg=audit({}): argc=1 a0=ls\n", tag)
        + &format!("type=PROCTITLE msg=audit({}): proctitle=6C73\n", tag);
    let mut s = session();
    run(&mut s, &swapped);
    assert_eq!(stop(&s), (0, 1));
}

/// The table after the pairs below: ls (pid 300) and cat (pid 301), each its own argv.
fn assert_pair_learned(s: &Session) {
    assert_eq!(
        s.table.latest(300).unwrap().args_segment(),
        Some(&b"argc=1 a0=ls"[..])
    );
    assert_eq!(
        s.table.latest(301).unwrap().args_segment(),
        Some(&b"argc=1 a0=cat"[..])
    );
}

#[test]
fn an_interleaved_pair_is_two_events() {
    let (a, b) = (id(T0, 100), id(T0 + 1, 101));
    let log = syscall_line(T0, 100, 59, 0, 300, 1, "ls")
        + &syscall_line(T0 + 1, 101, 59, 0, 301, 1, "cat")
        + &format!("type=EXECVE msg=audit({}): argc=1 a0=ls\n", a)
        + &format!("type=EXECVE msg=audit({}): argc=1 a0=cat\n", b)
        + &format!("type=PATH msg=audit({}): item=0 inode=1\n", a)
        + &format!("type=PROCTITLE msg=audit({}): proctitle=6C73\n", a)
        + &format!("type=CWD msg=audit({}): cwd=\"/\"\n", b)
        + &format!("type=PROCTITLE msg=audit({}): proctitle=636174\n", b);
    let mut s = session();
    let q = run(&mut s, &log);
    assert_eq!(stop(&s), (log.len(), 0));
    assert_eq!((s.scan.lines, s.scan.records, s.scan.events), (8, 8, 2));
    assert_eq!(q.expected, 102);
    assert_pair_learned(&s);
    assert_eq!(s.scan.done.len(), 8);

    // B's PROCTITLE first: the reference completes B first; handed back.
    let b_first = log.replacen(
        &format!("type=PROCTITLE msg=audit({}): proctitle=6C73\n", a),
        "",
        1,
    ) + &format!("type=PROCTITLE msg=audit({}): proctitle=6C73\n", a);
    let mut s = session();
    run(&mut s, &b_first);
    assert_eq!(stop(&s), (0, 1));

    // No room for two in flight: handed back.
    let mut s = session();
    s.settings.max_inflight = 1;
    run(&mut s, &log);
    assert_eq!(stop(&s), (0, 1));

    // The same id twice: handed back.
    let same = log.replace(&b, &a);
    let mut s = session();
    run(&mut s, &same);
    assert_eq!(s.scan.events, 0);

    // B dated a window past A: not plain after A; nothing taken.
    let far = id(T0 + 6000, 101);
    let mut s = session();
    run(&mut s, &log.replace(&b, &far));
    assert_eq!((s.scan.events, s.scan.stop), (0, 1));
    assert!(s.scan.lost.is_empty() && s.table.is_empty());
}

#[test]
fn a_pair_whose_first_event_reaches_the_deadline_is_handed_back() {
    let (a, b) = (id(T0, 100), id(T0 + 1, 101));
    let log = syscall_line(T0, 100, 59, 0, 300, 1, "ls")
        + &syscall_line(T0 + 1, 101, 59, 0, 301, 1, "cat")
        + &format!("type=EXECVE msg=audit({}): argc=1 a0=ls\n", a)
        + &format!("type=EXECVE msg=audit({}): argc=1 a0=cat\n", b)
        + &format!("type=PROCTITLE msg=audit({}): proctitle=6C73\n", a)
        + &format!("type=PROCTITLE msg=audit({}): proctitle=636174\n", b);
    let mut s = session();
    scan_until(&mut s, log.as_bytes(), 0, quiet(), T0);
    assert_eq!((stop(&s), s.scan.events), ((0, Stop::Handback as i32), 0));
    // Only B reaches it: both taken, then the stop.
    let mut s = session();
    scan_until(&mut s, log.as_bytes(), 0, quiet(), T0 + 1);
    assert_eq!(
        (stop(&s), s.scan.events),
        ((log.len(), Stop::Due as i32), 2)
    );
}

#[test]
fn a_pair_passes_over_its_first_events_eoe_and_absorbs_the_seconds() {
    let (a, b) = (id(T0, 100), id(T0 + 1, 101));
    let pair = |eoe_a: &str, eoe_b: &str| {
        syscall_line(T0, 100, 59, 0, 300, 1, "ls")
            + &syscall_line(T0 + 1, 101, 59, 0, 301, 1, "cat")
            + &format!("type=EXECVE msg=audit({}): argc=1 a0=ls\n", a)
            + &format!("type=PROCTITLE msg=audit({}): proctitle=6C73\n", a)
            + eoe_a
            + &format!("type=CWD msg=audit({}): cwd=\"/\"\n", b)
            + &format!("type=PROCTITLE msg=audit({}): proctitle=636174\n", b)
            + eoe_b
    };
    let eoe_a = format!("type=EOE msg=audit({}): \n", a);
    let eoe_b = format!("type=EOE msg=audit({}): \n", b);
    let bare_a = format!("type=EOE msg=audit({}):\n", a);
    for (first, second) in [(&eoe_a, &eoe_b[..]), (&bare_a, "")] {
        let log = pair(first, second);
        let mut s = session();
        let q = run(&mut s, &log);
        assert_eq!(stop(&s), (log.len(), 0), "{}", log);
        let lines = log.matches('\n').count() as u64;
        assert_eq!(
            (s.scan.lines, s.scan.records, s.scan.events),
            (lines, lines, 2)
        );
        assert_eq!(q.expected, 102);
        assert_eq!(s.scan.done.len(), 8);
    }

    // A's EOE with a field, or twice, or before A's end; B's EOE before B's end:
    // split_pair does not take them (the reference may read them otherwise).
    let refused = [
        pair(&format!("type=EOE msg=audit({}): x=1\n", a), ""),
        pair(&format!("{}{}", eoe_a, eoe_a), ""),
        pair("", "").replacen(
            &format!("type=PROCTITLE msg=audit({})", a),
            &format!("{}type=PROCTITLE msg=audit({})", eoe_a, a),
            1,
        ),
        pair(&eoe_a, "").replacen(
            &format!("type=PROCTITLE msg=audit({})", b),
            &format!("{}type=PROCTITLE msg=audit({})", eoe_b, b),
            1,
        ),
    ];
    for log in refused.iter() {
        let mut s = session();
        run(&mut s, log);
        assert_eq!(stop(&s), (0, 1), "{}", log);
        assert!(s.table.is_empty());
    }

    // A's EOE after B's end: the pair ends at B's PROCTITLE; the EOE is handed back.
    let late = pair("", &eoe_a);
    let mut s = session();
    run(&mut s, &late);
    assert_eq!(stop(&s), (late.len() - eoe_a.len(), 1));
    assert_eq!(s.scan.events, 2);
}

#[test]
fn single_records_of_the_named_types_are_taken() {
    let mut s = session();
    let log = format!(
        "type=USER_CMD msg=audit({}): pid=1 cmd=6C73\u{1d}UID=\"root\"\ntype=USER_CMD msg=audit({}): x\n",
        id(T0, 100),
        id(T0 + 3, 101)
    );
    let q = run(&mut s, &log);
    assert_eq!(stop(&s), (log.len(), 0));
    assert_eq!(
        (
            s.scan.lines,
            s.scan.records,
            s.scan.events,
            s.scan.process_events
        ),
        (2, 2, 2, 0)
    );
    assert_eq!((q.present, q.expected), (T0 + 3, 102));
    let other = format!("type=USER_AUTH msg=audit({}): x\n", id(T0, 100));
    run(&mut s, &other);
    assert_eq!(stop(&s), (0, 1));
    let long_ms = format!("type=USER_CMD msg=audit({}.1234:100): x\n", T0 / 1000);
    run(&mut s, &long_ms);
    assert_eq!(stop(&s), (0, 1));
}

#[test]
fn forks_and_other_syscalls_learn_as_proctable() {
    let mut s = session();
    let tag = |t: i64, n: i64| format!("type=PROCTITLE msg=audit({}): proctitle=6C73\n", id(t, n));
    let log = exec_run(T0, 100, 200, 1, "sh")
        + &syscall_line(T0 + 1, 101, 56, 201, 200, 1, "sh")
        + &tag(T0 + 1, 101)
        + &syscall_line(T0 + 2, 102, 56, -11, 200, 1, "sh")
        + &tag(T0 + 2, 102)
        + &syscall_line(T0 + 3, 103, 2, 3, 202, 1, "cat")
        + &tag(T0 + 3, 103)
        + &syscall_line(T0 + 4, 104, 2, 3, 200, 1, "cat")
        + &tag(T0 + 4, 104);
    run(&mut s, &log);
    assert_eq!(stop(&s), (log.len(), 0));
    assert_eq!(s.scan.events, 5);
    assert_eq!(s.scan.process_events, 1);
    let parent = s.table.latest(200).unwrap().clone();
    let child = s.table.latest(201).unwrap();
    assert_eq!(child.ppid(), Some(200));
    assert_eq!(child.args_segment(), parent.args_segment());
    assert_eq!(child.exec_id(), parent.exec_id());
    assert_eq!(child.since_ms(), i128::from(T0 + 1));
    assert_eq!(s.table.len(), 3); // 200, 201, 202; the failed fork adds nothing
    assert!(s.table.latest(202).unwrap().args_segment().is_none());
    // "Other" does not replace a known pid's entry.
    assert_eq!(s.table.latest(200).unwrap().since_ms(), i128::from(T0));
}

#[test]
fn live_mode_stops_for_an_unknown_parent() {
    let mut s = session();
    s.settings.live = true;
    let log = exec_run(T0, 100, 200, 77, "ls");
    let q = run(&mut s, &log);
    assert_eq!(stop(&s), (0, Stop::Live as i32));
    assert_eq!((s.scan.ppid, s.scan.time_ms), (77, T0));
    s.table.mark_unreadable(77);
    run_from(&mut s, &log, q);
    assert_eq!(stop(&s), (log.len(), 0));
    let mut s = session();
    s.settings.live = true;
    run(&mut s, &exec_run(T0, 100, 200, 0, "ls")); // pid 0 is never looked up
    assert_eq!(s.scan.stop, 0);
}

#[test]
fn gaps_are_reported_lost_once_a_window_has_passed() {
    let mut s = session();
    let log = exec_run(T0, 102, 200, 1, "ls")
        + &exec_run(T0 + 3000, 103, 201, 1, "ls")
        + &exec_run(T0 + 5001, 104, 202, 1, "ls");
    let q = run(&mut s, &log);
    assert_eq!(s.scan.events, 3);
    assert_eq!(s.scan.lost, vec![[100, 101, T0 / 1000, 0, 102]]);
    assert_eq!((q.expected, q.ahead_len()), (105, 0));
}

#[test]
fn done_keeps_the_last_65536_events() {
    let mut s = session();
    let mut log = String::new();
    let n = 70_000;
    for k in 0..n {
        log += &format!("type=USER_CMD msg=audit({}): x\n", id(T0, 100 + k));
    }
    let q = run(&mut s, &log);
    assert_eq!(s.scan.events, n as u64);
    assert_eq!(s.scan.done.len(), 4 * 65_536);
    assert_eq!(s.scan.done[2], 100 + n - 65_536);
    assert_eq!(q.expected, 100 + n);
}

#[test]
fn hostile_bytes_never_break_the_scan() {
    let base = exec_run(T0, 100, 200, 1, "ls")
        + &format!("type=USER_CMD msg=audit({}): x\n", id(T0, 101))
        + &exec_run(T0 + 1, 102, 201, 200, "sh");
    let alphabet = b"\n\r\0 \"=:().#x0123456789\x1d";
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for _ in 0..3000 {
        let mut buf = base.clone().into_bytes();
        for _ in 0..(next() % 6) {
            let at = (next() as usize) % buf.len();
            match next() % 3 {
                0 => buf[at] = alphabet[(next() as usize) % alphabet.len()],
                1 => {
                    buf.remove(at);
                }
                _ => buf.insert(at, alphabet[(next() as usize) % alphabet.len()]),
            }
        }
        let mut s = session();
        s.settings.live = next() % 2 == 0;
        scan(&mut s, &buf, 0, quiet());
        let end = s.scan.end;
        assert!(end <= buf.len());
        assert!(end == 0 || buf[end - 1] == b'\n');
        assert_eq!(s.scan.done.len() as u64, 4 * s.scan.events);
        assert!(s.scan.records <= s.scan.lines);
        assert_eq!(
            s.scan.lines as usize,
            buf[..end].iter().filter(|&&b| b == b'\n').count()
        );
    }
}

/// Throughput over a real log (`KW_BENCH_LOG`): `cargo test --release -- --ignored --nocapture`.
///
/// As replay feeds it: windows of `KW_BENCH_CHUNK` bytes (default 256 KiB, replay's
/// read size) cut at a line end, each copied into one reused buffer (so the scan
/// finds it in cache, as after a read), scanned call after call; a unit cut by the
/// window's end is carried to the next. `KW_BENCH_ROUNDS` rounds (default 3), each
/// with a new session; the best round's scan time is printed.
#[test]
#[ignore]
fn bench_scan_over_a_log() {
    let path = match std::env::var("KW_BENCH_LOG") {
        Ok(path) => path,
        Err(_) => return,
    };
    let env = |name: &str, default: usize| {
        std::env::var(name)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    };
    let chunk = env("KW_BENCH_CHUNK", 1 << 18);
    let rounds = env("KW_BENCH_ROUNDS", 3);
    let data = std::fs::read(path).unwrap();
    let mut best = None;
    for _ in 0..rounds {
        let cpu_before = thread_cpu();
        let round = bench_round(&data, chunk);
        let cpu = thread_cpu() - cpu_before;
        println!(
            "{} MB in {} KiB windows: {} calls, {} events, {} lines skipped; scan {:?} wall, \
             round {:?} on the CPU (window copies included)",
            data.len() / 1_000_000,
            chunk >> 10,
            round.1,
            round.2,
            round.3,
            round.0,
            cpu
        );
        best = Some(best.map_or(cpu, |b: std::time::Duration| b.min(cpu)));
    }
    println!("best round on the CPU {:?}", best.unwrap_or_default());
}

/// Time this thread spent on a CPU (the load of a shared machine left out); zero
/// where /proc/thread-self/schedstat is not readable.
fn thread_cpu() -> std::time::Duration {
    let text = std::fs::read_to_string("/proc/thread-self/schedstat").unwrap_or_default();
    let ns = text
        .split_whitespace()
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    std::time::Duration::from_nanos(ns)
}

/// One pass of [`bench_scan_over_a_log`]: (scan time, calls, events, lines skipped).
fn bench_round(data: &[u8], chunk: usize) -> (std::time::Duration, u64, u64, u64) {
    let mut s = session();
    for t in [
        "USER_CMD",
        "USER_START",
        "USER_END",
        "CRED_ACQ",
        "CRED_DISP",
        "USER_ACCT",
        "USER_AUTH",
        "LOGIN",
        "SERVICE_START",
        "SERVICE_STOP",
    ] {
        s.settings.single_types.insert(t.as_bytes().to_vec());
    }
    s.verdicts.set_inodes(&[1]);
    let mut q = Quiet::new(0, 0, 0, 0, -1, &[]);
    let (mut events, mut calls, mut skipped) = (0u64, 0u64, 0u64);
    let mut spent = std::time::Duration::default();
    let mut window: Vec<u8> = Vec::with_capacity(chunk + (1 << 20));
    let mut from = 0;
    while from < data.len() {
        let end = (from + chunk).min(data.len());
        let cut = match data[from..end].iter().rposition(|&b| b == b'\n') {
            Some(at) if end < data.len() => from + at + 1,
            _ => data[from..]
                .iter()
                .position(|&b| b == b'\n')
                .map_or(data.len(), |at| from + at + 1)
                .max(end),
        };
        window.clear();
        window.extend_from_slice(&data[from..cut]);
        let mut pos = 0;
        while pos < window.len() {
            let started = std::time::Instant::now();
            scan(&mut s, &window, pos, q.clone());
            spent += started.elapsed();
            calls += 1;
            events += s.scan.events;
            let st = s.scan.state;
            let mut ahead = Vec::new();
            for row in s.scan.ahead.chunks(4) {
                ahead.push([row[0], row[1], row[2], row[3]]);
            }
            q = Quiet::new(st[0], st[1], st[2], st[3], st[4], &ahead);
            pos = s.scan.end;
            match s.scan.stop {
                0 => break,
                2 => {
                    let k = s.scan.key.clone();
                    let exec = k.windows(11).any(|w| w == b"syscall=59\0");
                    s.verdicts.set(
                        &k,
                        if exec {
                            // As the default rules' path items: every exec's PATH lines read.
                            LEARN_EXEC | EVALUATED | INODE_IF_RELEVANT
                        } else {
                            LEARN_OTHER
                        },
                    );
                }
                _ => {
                    let rest = window[pos..]
                        .iter()
                        .filter(|&&b| b == b'\n')
                        .take(48)
                        .count();
                    if rest < 48 && cut < data.len() {
                        // A unit the window's end may cut: read again with the next.
                        break;
                    }
                    // Python's unit: here one line, with the clock and serials put past it.
                    skipped += 1;
                    let nl = pos + window[pos..].iter().position(|&b| b == b'\n').unwrap();
                    q = past(&window[pos..nl], q);
                    pos = nl + 1;
                }
            }
        }
        from += pos;
    }
    (spent, calls, events, skipped)
}

/// The state after Python handled `line` (its serial seen, the clock moved).
fn past(line: &[u8], q: Quiet) -> Quiet {
    let at = match crate::lines::find(line, b"msg=audit(") {
        Some(at) => at,
        None => return q,
    };
    let rest = &line[at + 10..];
    let dot = rest.iter().position(|&b| b == b'.').unwrap_or(0);
    let colon = rest.iter().position(|&b| b == b':').unwrap_or(0);
    let close = rest.iter().position(|&b| b == b')').unwrap_or(0);
    let num = |t: &[u8]| {
        std::str::from_utf8(t)
            .ok()
            .and_then(|t| t.parse::<i64>().ok())
    };
    match (
        num(&rest[..dot]),
        num(rest.get(dot + 1..colon).unwrap_or(b"")),
        num(rest.get(colon + 1..close).unwrap_or(b"")),
    ) {
        (Some(sec), Some(ms), Some(serial)) => {
            let t = sec * 1000 + ms;
            if q.expected == 0 || (t - q.present).abs() > 5000 {
                Quiet::new(t, q.elapsed, serial + 1, t, serial, &[])
            } else {
                Quiet::new(
                    q.present.max(t),
                    q.elapsed,
                    q.expected.max(serial + 1),
                    q.last_time_ms,
                    q.done_ceiling.max(serial),
                    &[],
                )
            }
        }
        _ => q,
    }
}

/// A session whose `ls` execs have a plain verdict reading `reads`, gated by the
/// needle "zz" (not in `ls -l`).
fn plain_session(reads: u8) -> Session {
    let mut s = Session::new(settings());
    s.verdicts
        .set_needles(NeedleSet::new(&[(b"zz".to_vec(), false)]));
    for comm in ["sh", "cat"] {
        s.verdicts.set(&key(59, comm), LEARN_EXEC | EVALUATED);
    }
    s.verdicts
        .set_with_needles(
            &key(59, "ls"),
            LEARN_EXEC | EVALUATED | NEEDLE_IF_RELEVANT,
            &[0],
            false,
            Some(reads),
        )
        .unwrap();
    s
}

/// Python's answer for the last stop: only learned.
fn answer(s: &mut Session) {
    assert_eq!(s.scan.stop, Stop::Plain as i32);
    assert!(s.verdicts.plain.answer_learned());
}

#[test]
fn a_plain_verdict_asks_once_per_plain_key() {
    let mut s = plain_session(READS_PARENT | READS_PARENT_LINE);
    let shell = exec_run(T0, 100, 300, 1, "sh");
    let first = exec_run(T0 + 10, 101, 400, 300, "ls");
    let log = shell.clone() + &first;
    let q = run(&mut s, &log);
    // The shell is taken; the ls run stops for Python's answer, with its plain key.
    assert_eq!(stop(&s), (shell.len(), Stop::Plain as i32));
    assert_eq!(s.scan.events, 1);
    assert!(!s.scan.key.is_empty());
    assert_eq!(s.verdicts.plain.pending(), Some(&s.scan.key[..]));
    assert_eq!(s.table.latest(400), None, "not taken: nothing learned");
    answer(&mut s);
    // Another child of the same shell, another time, pid and serial: the same key.
    let second = exec_run(T0 + 20, 102, 401, 300, "ls");
    run_from(&mut s, &(first.clone() + &second), q);
    assert_eq!(stop(&s), (first.len() + second.len(), 0));
    assert_eq!((s.scan.events, s.scan.process_events), (2, 2));
    assert!(s.table.latest(400).is_some() && s.table.latest(401).is_some());
    assert_eq!(s.verdicts.plain.len(), 1);
}

#[test]
fn another_parent_is_another_plain_key() {
    let mut s = plain_session(READS_PARENT | READS_PARENT_LINE);
    let log = exec_run(T0, 100, 300, 1, "sh") + &exec_run(T0 + 10, 101, 400, 300, "ls");
    let q = run(&mut s, &log);
    answer(&mut s);
    // A parent the table does not know.
    let orphan = exec_run(T0 + 20, 102, 401, 999, "ls");
    let q = run_from(&mut s, &orphan, q);
    assert_eq!(stop(&s), (0, Stop::Plain as i32));
    answer(&mut s);
    run_from(&mut s, &orphan, q.clone());
    assert_eq!(stop(&s), (orphan.len(), 0));
    // The same parent with other arguments: another key when its command line is read...
    let cat = exec_run(T0 + 30, 103, 500, 1, "cat");
    let child = exec_run(T0 + 40, 104, 501, 500, "ls");
    run_from(&mut s, &(cat.clone() + &child), q.clone());
    assert_eq!(stop(&s), (cat.len(), Stop::Plain as i32));
}

#[test]
fn only_the_facts_read_are_keyed() {
    // Parent name and exe only: two `sh` parents with other arguments share a key.
    let mut s = plain_session(READS_PARENT);
    let sh = exec_run(T0, 100, 300, 1, "sh");
    let child = exec_run(T0 + 10, 101, 400, 300, "ls");
    let q = run(&mut s, &(sh.clone() + &child));
    answer(&mut s);
    let other_sh = exec_run(T0 + 20, 102, 600, 1, "sh").replace("a1=\"-l\"", "a1=\"-c\"");
    let child2 = exec_run(T0 + 30, 103, 601, 600, "ls").replace("cwd=\"/root\"", "cwd=\"/x\"");
    let log = other_sh + &child2;
    run_from(&mut s, &log, q.clone());
    assert_eq!(stop(&s), (log.len(), 0));
    // The cwd read: another directory is another key.
    for (reads, changed, asked) in [
        (READS_CWD, "cwd=\"/root\"", "cwd=\"/x\""),
        (READS_IDS, "auid=1000", "auid=1001"),
        (READS_CAPS, "type=PATH", "type=BPRM_FCAPS"),
    ] {
        let mut s = plain_session(reads);
        let first = exec_run(T0, 100, 400, 1, "ls");
        let q = run(&mut s, &first);
        answer(&mut s);
        let same = exec_run(T0 + 10, 101, 401, 1, "ls");
        let q = run_from(&mut s, &same, q);
        assert_eq!(stop(&s), (same.len(), 0), "{}", reads);
        let other = exec_run(T0 + 20, 102, 402, 1, "ls").replace(changed, asked);
        run_from(&mut s, &other, q);
        assert_eq!(stop(&s), (0, Stop::Plain as i32), "{}", reads);
    }
}

#[test]
fn a_plain_verdict_is_not_asked_when_a_needle_or_irrelevance_decides() {
    // A needle may be in the command line: Python's, asked for by its full key, not
    // its plain key.
    let mut s = Session::new(settings());
    s.verdicts
        .set_needles(NeedleSet::new(&[(b"-l".to_vec(), false)]));
    s.verdicts
        .set_with_needles(
            &key(59, "ls"),
            LEARN_EXEC | EVALUATED | NEEDLE_IF_RELEVANT,
            &[0],
            false,
            Some(READS_PARENT),
        )
        .unwrap();
    run(&mut s, &exec_run(T0, 100, 400, 1, "ls"));
    assert_eq!(stop(&s), (0, Stop::Plain as i32));
    let asked = s.verdicts.plain.pending().map(<[u8]>::to_vec);
    assert!(asked.map_or(false, |k| k.windows(3).any(|w| w == b"-l\"")));
    // Not relevant (before --since): taken, nothing asked.
    let mut s = plain_session(READS_PARENT);
    s.settings.since_ms = Some(T0 + 1);
    let log = exec_run(T0, 100, 400, 1, "ls");
    run(&mut s, &log);
    assert_eq!(stop(&s), (log.len(), 0));
    assert_eq!(s.verdicts.plain.pending(), None);
}

#[test]
fn plain_answers_go_with_the_verdicts_and_the_inodes() {
    let log = exec_run(T0, 100, 400, 1, "ls");
    let mut s = plain_session(READS_PARENT);
    let q = run(&mut s, &log);
    answer(&mut s);
    run_from(&mut s, &log, q.clone());
    assert_eq!(stop(&s), (log.len(), 0));
    s.verdicts.set_inodes(&[1]);
    run_from(&mut s, &log, q.clone());
    assert_eq!(
        stop(&s),
        (0, Stop::Plain as i32),
        "inodes changed: asked again"
    );
    answer(&mut s);
    run_from(&mut s, &log, q.clone());
    assert_eq!(stop(&s), (log.len(), 0));
    // A stop, then the verdicts go before Python answers: the answer is not kept.
    s.verdicts.set_inodes(&[2]);
    run_from(&mut s, &log, q.clone());
    assert_eq!(stop(&s), (0, Stop::Plain as i32));
    s.verdicts.clear();
    assert!(!s.verdicts.plain.answer_learned());
    assert!(s.verdicts.plain.is_empty());
    run_from(&mut s, &log, q);
    assert_eq!(stop(&s), (0, Stop::Verdict as i32));
}

#[test]
fn a_plain_verdict_in_a_pair_or_after_a_lead_is_handed_back() {
    let mut s = plain_session(READS_PARENT);
    let a = exec_run(T0, 100, 400, 1, "ls");
    let q = run(&mut s, &a);
    answer(&mut s);
    // Interleaved with another run: a pair's plain facts are not keyed.
    let b = exec_run(T0 + 1, 101, 401, 1, "sh");
    let mut lines_a: Vec<&str> = a.lines().collect();
    let lines_b: Vec<&str> = b.lines().collect();
    let first = lines_a.remove(0);
    let pair = format!(
        "{}\n{}\n{}\n",
        first,
        lines_b.join("\n"),
        lines_a.join("\n")
    );
    run_from(&mut s, &pair, q);
    assert_eq!(stop(&s), (0, Stop::Handback as i32));
}

/// A session whose `ls` verdict's needle ("-l") is in `exec_run`'s command line, with a
/// needle-only verdict (`plain`: `None`) or a plain one.
fn needle_session(plain: Option<u8>) -> Session {
    let mut s = Session::new(settings());
    s.verdicts
        .set_needles(NeedleSet::new(&[(b"-l".to_vec(), false)]));
    s.verdicts.set(&key(59, "sh"), LEARN_EXEC | EVALUATED);
    s.verdicts
        .set_with_needles(
            &key(59, "ls"),
            LEARN_EXEC | EVALUATED | NEEDLE_IF_RELEVANT,
            &[0],
            false,
            plain,
        )
        .unwrap();
    s
}

#[test]
fn a_needle_hit_is_taken_when_python_answered_its_full_key() {
    for plain in [None, Some(READS_PARENT)] {
        let mut s = needle_session(plain);
        let shell = exec_run(T0, 100, 300, 1, "sh");
        let first = exec_run(T0 + 10, 101, 400, 300, "ls");
        let q = run(&mut s, &(shell.clone() + &first));
        // Before: handed back, run after run. Now: a stop asking for its full key.
        assert_eq!(stop(&s), (shell.len(), Stop::Plain as i32), "{:?}", plain);
        assert_eq!(s.table.latest(400), None, "not taken: nothing learned");
        answer(&mut s);
        // The same command by the same parent, another time, pid and serial: taken.
        let second = exec_run(T0 + 20, 102, 401, 300, "ls");
        let q = run_from(&mut s, &(first.clone() + &second), q);
        assert_eq!(stop(&s), (first.len() + second.len(), 0), "{:?}", plain);
        assert_eq!((s.scan.events, s.scan.process_events), (2, 2));
        assert!(s.table.latest(401).is_some());
        // Each fact, and the command line, is in the key: another value asks again.
        for (from, to) in [
            ("a1=\"-l\"", "a1=\"-la\""), // the command line (its needle still there)
            ("cwd=\"/root\"", "cwd=\"/x\""),
            ("auid=1000", "auid=1001"),
            ("type=PATH", "type=BPRM_FCAPS"),
        ] {
            let other = exec_run(T0 + 30, 103, 402, 300, "ls").replace(from, to);
            assert_ne!(other, exec_run(T0 + 30, 103, 402, 300, "ls"));
            run_from(&mut s, &other, q.clone());
            assert_eq!(stop(&s), (0, Stop::Plain as i32), "{} {:?}", to, plain);
        }
        // Another parent (not known to the table): asked again.
        let orphan = exec_run(T0 + 30, 103, 402, 999, "ls");
        run_from(&mut s, &orphan, q.clone());
        assert_eq!(stop(&s), (0, Stop::Plain as i32), "{:?}", plain);
        // A run whose needle is absent has another key (its plain one, if any).
        if plain.is_some() {
            let no_needle = exec_run(T0 + 30, 103, 402, 300, "ls").replace("a1=\"-l\"", "a1=\"x\"");
            run_from(&mut s, &no_needle, q.clone());
            assert_eq!(stop(&s), (0, Stop::Plain as i32));
        }
    }
}

#[test]
fn a_full_key_is_never_a_plain_key() {
    let mut s = needle_session(Some(READS_ALL));
    let log = exec_run(T0, 100, 400, 1, "ls");
    run(&mut s, &log);
    let full = s.scan.key.clone();
    answer(&mut s);
    let mut plain = Vec::new();
    let buf = log.as_bytes();
    let head = crate::syscall::parse(&buf[..log.find('\n').unwrap()]).unwrap();
    let facts = crate::plain::RunFacts {
        verdict_key: [
            &buf[head.call.0..head.call.1],
            &buf[head.success.0..head.success.1],
            &buf[head.comm.0..head.comm.1],
            &buf[head.exe.0..head.exe.1],
        ],
        parent: None,
        run: buf,
        args_end: log.find("type=CWD").unwrap(),
        id: &buf[head.id.0..head.id.1],
        ids: &buf[head.creds.0..head.creds.1],
    };
    crate::plain::key_of(&mut plain, READS_ALL, &facts);
    assert_ne!(full, plain);
    assert!(
        !s.verdicts.plain.learned(&plain),
        "the full answer keys no plain run"
    );
    assert!(s.verdicts.plain.learned(&full));
}

/// A needle verdict on `ls` whose group is "-l" (in `exec_run`'s "ls -l"), with the
/// tests behind its gate given as `tests` (needles: "-l" 0, "zz" 1, "ls" 2).
fn tests_session(tests: &[u32]) -> Session {
    let mut s = Session::new(settings());
    let needles: Vec<(Vec<u8>, bool)> = ["-l", "zz", "ls"]
        .iter()
        .map(|t| (t.as_bytes().to_vec(), false))
        .collect();
    s.verdicts.set_needles(NeedleSet::new(&needles));
    s.verdicts
        .set_with_needles(
            &key(59, "ls"),
            LEARN_EXEC | EVALUATED | NEEDLE_IF_RELEVANT,
            &[0],
            false,
            None,
        )
        .unwrap();
    if !tests.is_empty() {
        s.verdicts.set_tests(&key(59, "ls"), tests).unwrap();
    }
    s
}

#[test]
fn a_needle_verdicts_tests_decide_whether_its_needles_matter() {
    let log = exec_run(T0, 100, 200, 1, "ls");
    let cases: [(&[u32], bool); 5] = [
        (&[], true),                          // the group alone: "-l" is there
        (&[1, 2, 1, 0, 1, 1], false),         // "-l" and "zz": no "zz"
        (&[1, 2, 1, 0, 1, 2], true),          // "-l" and "ls"
        (&[2, 2, 1, 0, 1, 1, 1, 1, 2], true), // ("-l" and "zz") or "ls"
        (&[1, 0], true),                      // a test without clauses may always hold
    ];
    for (tests, python) in cases.iter() {
        let mut s = tests_session(tests);
        run(&mut s, &log);
        let expected = if *python {
            (0, Stop::Plain as i32)
        } else {
            (log.len(), 0)
        };
        assert_eq!(stop(&s), expected, "{:?}", tests);
    }
    // No EXECVE line, its command line not known: Python's whatever the tests.
    let bare = exec_run(T0, 100, 200, 1, "ls")
        .lines()
        .filter(|l| !l.starts_with("type=EXECVE"))
        .map(|l| format!("{}\n", l))
        .collect::<String>();
    let mut s = tests_session(&[1, 2, 1, 0, 1, 1]);
    run(&mut s, &bare);
    assert_eq!(stop(&s), (0, Stop::Plain as i32));
}

#[test]
fn tests_are_checked_and_kept_only_for_a_needle_verdict() {
    let mut s = tests_session(&[]);
    for bad in [
        &[][..],
        &[1],
        &[1, 1],
        &[1, 1, 2, 0],
        &[0, 7],
        &[1, 1, 1, 9],
    ] {
        assert!(
            s.verdicts.set_tests(&key(59, "ls"), bad).is_err(),
            "{:?}",
            bad
        );
    }
    // Another key (not cached, or without needles): nothing kept, no error.
    s.verdicts.set(&key(59, "sh"), LEARN_EXEC | EVALUATED);
    assert!(s.verdicts.set_tests(&key(59, "sh"), &[1, 1, 1, 1]).is_ok());
    assert!(s.verdicts.set_tests(&key(59, "cat"), &[1, 1, 1, 1]).is_ok());
    assert_eq!(
        s.verdicts.get_with_group(&key(59, "sh")).map(|v| v.3),
        Some(0)
    );
    // The same tests twice: one number.
    s.verdicts.set_tests(&key(59, "ls"), &[1, 1, 1, 1]).unwrap();
    let first = s.verdicts.get_with_group(&key(59, "ls")).unwrap().3;
    s.verdicts.set_tests(&key(59, "ls"), &[1, 1, 1, 1]).unwrap();
    assert_eq!(s.verdicts.get_with_group(&key(59, "ls")).unwrap().3, first);
    assert_ne!(first, 0);
    s.verdicts.clear();
    assert_eq!(s.verdicts.get_with_group(&key(59, "ls")), None);
}

/// The byte after a key's four length-prefixed verdict-key parts (plain.rs).
fn mark(key: &[u8]) -> u8 {
    let mut at = 0usize;
    for _ in 0..4 {
        let mut len = [0u8; 8];
        len.copy_from_slice(&key[at..at + 8]);
        at += 8 + u64::from_le_bytes(len) as usize;
    }
    key[at]
}

#[test]
fn a_guarded_test_asks_once_which_guards_hold() {
    // One test: "-l" (in the line) behind a guard reading the parent's name.
    let mut s = tests_session(&[1, 1, 1, 0]);
    s.verdicts.set(&key(59, "sh"), LEARN_EXEC | EVALUATED);
    s.verdicts
        .set_guards(&key(59, "ls"), READS_PARENT, 1)
        .unwrap();
    let shell = exec_run(T0, 100, 300, 1, "sh");
    let first = exec_run(T0 + 10, 101, 400, 300, "ls");
    let q = run(&mut s, &(shell.clone() + &first));
    // Before: Python's (its needle is there). Now: a stop asking for its guard key.
    assert_eq!(stop(&s), (shell.len(), Stop::Plain as i32));
    assert_eq!(mark(&s.scan.key), crate::plain::GUARD_KEY | READS_PARENT);
    assert!(s.verdicts.alive.answer(0), "no guard holds");
    assert!(!s.verdicts.alive.answer(0), "answered once");
    // The same facts, another command line with the needle: taken, nothing asked.
    let second = exec_run(T0 + 20, 102, 401, 300, "ls").replace("a1=\"-l\"", "a1=\"-la\"");
    let q2 = run_from(&mut s, &(first.clone() + &second), q.clone());
    assert_eq!(stop(&s), (first.len() + second.len(), 0));
    assert_eq!(s.scan.events, 2);
    // Another parent: asked again; its guard holds: Python's (by its full key).
    let orphan = exec_run(T0 + 30, 103, 402, 999, "ls");
    run_from(&mut s, &orphan, q2.clone());
    assert_eq!(stop(&s), (0, Stop::Plain as i32));
    assert!(s.verdicts.alive.answer(1));
    run_from(&mut s, &orphan, q2.clone());
    assert_eq!(stop(&s), (0, Stop::Plain as i32));
    assert!(
        s.verdicts.alive.get(&s.scan.key).is_none(),
        "a full key now"
    );
    assert_eq!(s.verdicts.alive.len(), 2);
    // A guardless test that may hold decides alone: Python's, nothing asked.
    let mut t = tests_session(&[2, 1, 1, 0, 1, 1, 2]);
    t.verdicts
        .set_guards(&key(59, "ls"), READS_PARENT, 1)
        .unwrap();
    run(&mut t, &first);
    assert_eq!(stop(&t), (0, Stop::Plain as i32));
    assert!(t.verdicts.alive.is_empty() && !t.verdicts.alive.answer(0));
    // The answers go with the verdicts and the inodes.
    s.verdicts.set_inodes(&[1]);
    assert!(s.verdicts.alive.is_empty());
}

#[test]
fn guards_are_checked() {
    let mut s = tests_session(&[1, 1, 1, 0]);
    assert!(s.verdicts.set_guards(&key(59, "ls"), 32, 1).is_err());
    // Bits beyond the tests are dropped; a verdict without tests keeps none.
    s.verdicts
        .set_guards(&key(59, "ls"), READS_PARENT, 0b110)
        .unwrap();
    let log = exec_run(T0, 100, 200, 1, "ls");
    run(&mut s, &log);
    assert_eq!(stop(&s), (0, Stop::Plain as i32));
    assert!(s.verdicts.alive.is_empty(), "a full key, not a guard key");
    let mut t = tests_session(&[]);
    t.verdicts
        .set_guards(&key(59, "ls"), READS_PARENT, 1)
        .unwrap();
    assert_eq!(t.verdicts.get_with_group(&key(59, "ls")).unwrap().3, 0);
}
