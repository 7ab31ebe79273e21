//! The Launch view: the demo sweep's plan (random + the zoo models already converted) and its key.

use super::super::state::State;
use super::super::update::{DEMO_DATASET, DEMO_MAX_PULLED, DEMO_SETS, DEMO_TRIALS, demo_models};
use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::text::Line;
use ratatui::widgets::{Block, Borders, Paragraph, Widget, Wrap};

pub fn render(s: &State, area: Rect, buf: &mut Buffer) {
    let models = demo_models(s);
    let runs = models.len() as u32 * DEMO_TRIALS;
    let lines = vec![
        Line::from(format!("dataset  {DEMO_DATASET}")),
        Line::from(format!("models   {}", models.join(", "))),
        Line::from(format!(
            "         (random plus up to {DEMO_MAX_PULLED} zoo models already converted; pull more with {} in Zoo)",
            s.keymap.key_of("zoo_pull")
        )),
        Line::from(format!("trials   {DEMO_TRIALS}")),
        Line::from(format!("settings {} (minutes on a CPU)", DEMO_SETS.join(" "))),
        Line::from(format!("plan     {runs} runs, queued on the agent; they keep running if you quit")),
        Line::from(""),
        Line::from(format!("press {} to enqueue", s.keymap.key_of("demo_sweep"))),
    ];
    Paragraph::new(lines)
        .wrap(Wrap { trim: false })
        .block(Block::default().borders(Borders::TOP).title(" Launch: demo sweep "))
        .render(area, buf);
}
