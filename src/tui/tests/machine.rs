//! The GPUs view on a machine without a GPU: the host, the agent and its queue, read from a real agent.

use super::super::action::{Action, HostView};
use super::super::app::read_host;
use super::super::state::View;
use super::super::update::update;
use super::{screen, two_runs};
use crate::config::Config;
use crate::home::Home;
use crate::sched::agent;
use crate::sched::socket::{self, Request};

#[test]
fn without_a_gpu_the_view_shows_the_host_the_agent_and_its_queue() {
    let dir = tempfile::tempdir().unwrap();
    let home = Home::under(dir.path()).unwrap();
    home.ensure().unwrap();
    let mut s = two_runs();
    update(&mut s, Action::Show(View::Gpus));
    update(&mut s, Action::Gpus(vec![]));

    let without = read_host(&home);
    assert!(without.agent.is_none() && without.host.is_some(), "{without:?}");
    update(&mut s, Action::Host(Box::new(without)));
    let text = screen(&s, 80, 24);
    assert!(text.contains("no GPU: NVML found none") && text.contains("agent: not running"), "{text}");
    let host = text.lines().find(|l| l.starts_with("host: ")).unwrap_or_default();
    assert!(host.contains("CPUs, load") && host.contains("GiB used"), "{text}");

    let agent_home = home.clone();
    let agent = std::thread::spawn(move || agent::run(agent_home, &Config::default()));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !socket::agent_answers(&home) {
        assert!(std::time::Instant::now() < deadline && !agent.is_finished(), "the agent never answered");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    socket::request_ok(&home, &Request::Pause).unwrap();
    let with: HostView = read_host(&home);
    socket::request_ok(&home, &Request::Shutdown).unwrap();
    agent.join().unwrap().unwrap();
    let status = with.agent.clone().expect("the agent answered");
    assert_eq!(status.pid, std::process::id());
    update(&mut s, Action::Host(Box::new(with)));
    let text = screen(&s, 80, 24);
    let line = text.lines().find(|l| l.starts_with("agent: ")).unwrap_or_default();
    assert!(line.contains(&format!("pid {} (queue paused)", status.pid)), "{text}");
    assert!(
        line.contains(&format!("{} CPU slots", status.cpu_slots)) && line.contains("0 running, 0 queued"),
        "{text}"
    );
}

#[test]
fn the_queue_is_listed_under_no_gpu_and_cut_to_the_room_left() {
    use crate::sched::slots::Slot;
    use crate::sched::socket::{AgentStatus, RunningRun};
    let mut s = two_runs();
    update(&mut s, Action::Show(View::Gpus));
    update(&mut s, Action::Gpus(vec![]));
    let queued: Vec<String> = (0..40).map(|i| format!("20261201-0000{i:02}-demo-cls-random-t1")).collect();
    let agent = AgentStatus {
        pid: 42,
        cpu_slots: 1,
        running: vec![RunningRun { id: "20261201-run-a".into(), pid: 43, slot: Slot::Cpu(0), adopted: false }],
        queued: queued.clone(),
        ..AgentStatus::default()
    };
    update(&mut s, Action::Host(Box::new(HostView { host: None, agent: Some(agent) })));
    let text = screen(&s, 80, 24);
    assert!(text.contains("running  20261201-run-a  (cpu slot 0, pid 43)"), "{text}");
    assert!(text.contains(&format!("queued   {}", queued[0])), "{text}");
    let shown = queued.iter().filter(|id| text.contains(id.as_str())).count();
    assert!(shown > 5 && shown < 40, "{shown} queued runs shown:\n{text}");
    assert!(text.contains(&format!("... and {} more queued", 40 - shown)), "{text}");
    assert!(text.contains("host: /proc unreadable"), "{text}");
}
