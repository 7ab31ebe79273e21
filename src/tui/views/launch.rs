//! The Launch view: the demo sweep's plan and the key that enqueues it.

use super::super::state::State;
use super::super::update::{DEMO_DATASET, DEMO_MODELS, DEMO_TRIALS};
use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::text::Line;
use ratatui::widgets::{Block, Borders, Paragraph, Widget, Wrap};

pub fn render(s: &State, area: Rect, buf: &mut Buffer) {
    let runs = DEMO_MODELS.len() as u32 * DEMO_TRIALS;
    let lines = vec![
        Line::from(format!("dataset  {DEMO_DATASET}")),
        Line::from(format!("models   {}", DEMO_MODELS.join(", "))),
        Line::from(format!("trials   {DEMO_TRIALS}")),
        Line::from(format!("plan     {runs} runs, queued on the agent; they keep running if you quit")),
        Line::from(""),
        Line::from(format!("press {} to enqueue", s.keymap.key_of("demo_sweep"))),
    ];
    Paragraph::new(lines)
        .wrap(Wrap { trim: false })
        .block(Block::default().borders(Borders::TOP).title(" Launch: demo sweep "))
        .render(area, buf);
}
