//! The GPUs view: memory per GPU as NVML reports it and the running runs placed on it, or "no GPU".

use super::super::state::{State, View};
use super::{cursor_style, fg};
use crate::runs::record::State as RunState;
use crate::sched::slots::Slot;
use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Rect};
use ratatui::style::Color;
use ratatui::widgets::{Block, Borders, Paragraph, Row, Table, Widget};

/// The GPU index a device string names ("cuda" is GPU 0).
fn gpu_index(device: &str) -> Option<u32> {
    match device {
        "cuda" => Some(0),
        d => d.strip_prefix("cuda:")?.parse().ok(),
    }
}

pub fn render(s: &State, area: Rect, buf: &mut Buffer) {
    let block = Block::default().borders(Borders::TOP).title(" GPUs ");
    let inner = block.inner(area);
    block.render(area, buf);
    let Some(gpus) = &s.gpus else {
        Paragraph::new("asking NVML for GPUs...").render(inner, buf);
        return;
    };
    if gpus.is_empty() {
        Paragraph::new("no GPU: NVML found none; runs use the CPU").style(fg(s, Color::Yellow)).render(inner, buf);
        return;
    }
    let cursor = s.cursor[View::Gpus.index()];
    let rows = gpus.iter().enumerate().map(|(i, g)| {
        let runs: Vec<&str> = s
            .runs
            .values()
            .filter(|r| r.state() == Some(RunState::Running))
            .filter(|r| match r.slot {
                Some(slot) => slot == Slot::Gpu(g.index),
                None => r.spec.as_ref().and_then(|sp| gpu_index(&sp.device.device)) == Some(g.index),
            })
            .map(|r| r.id.as_str())
            .collect();
        let used = g.memory_total_mib.saturating_sub(g.memory_free_mib);
        let cells = [
            g.index.to_string(),
            g.name.clone(),
            format!("{used}/{} MiB", g.memory_total_mib),
            if runs.is_empty() { "-".into() } else { format!("{}: {}", runs.len(), runs.join(", ")) },
        ];
        let row = Row::new(cells);
        if i == cursor { row.style(cursor_style()) } else { row }
    });
    Table::new(rows, [Constraint::Length(3), Constraint::Length(24), Constraint::Length(18), Constraint::Min(10)])
        .header(Row::new(["#", "name", "memory", "runs"]).style(fg(s, Color::Cyan)))
        .render(inner, buf);
}
