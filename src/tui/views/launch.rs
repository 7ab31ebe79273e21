//! The Launch view: the sweep form (fields, then the Zoo models to choose from) beside the plan it makes.

use super::super::keymap::Bind;
use super::super::launch::{self, Field, Outcome, Row};
use super::super::state::{State, View};
use super::{cursor_style, fg, scroll_offset};
use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Color;
use ratatui::text::Line;
use ratatui::widgets::{Block, Borders, Paragraph, Widget, Wrap};

pub fn render(s: &State, area: Rect, buf: &mut Buffer) {
    let block = Block::default().borders(Borders::TOP).title(" Launch: build a sweep ");
    let inner = block.inner(area);
    block.render(area, buf);
    let form_width = (inner.width / 2).clamp(34.min(inner.width), 48);
    let [form, plan] = Layout::horizontal([Constraint::Length(form_width), Constraint::Min(10)]).areas(inner);
    render_form(s, form, buf);
    render_plan(s, plan, buf);
}

fn field_value(s: &State, field: Field) -> String {
    let form = &s.launch;
    let demo = s.datasets.iter().any(|d| d.name == form.dataset && d.demo);
    match field {
        Field::Trials => form.trials.to_string(),
        Field::Sets if form.sets.is_empty() => "(none)".into(),
        Field::Root if form.root.is_empty() && demo => "(generated demo)".into(),
        Field::Root if form.root.is_empty() => "(none: the image folder)".into(),
        Field::TrainList | Field::ValList | Field::TestList if form.text(field).is_empty() => "(dataset's own)".into(),
        _ => form.text(field).to_string(),
    }
}

fn render_form(s: &State, area: Rect, buf: &mut Buffer) {
    let cursor = s.cursor[View::Launch.index()];
    let mut lines: Vec<Line> = Field::ALL
        .iter()
        .enumerate()
        .map(|(i, field)| {
            let editing = s.launch.editing.as_ref().is_some_and(|(f, _)| f == field);
            let value = field_value(s, *field) + if editing { "_" } else { "" };
            let line = Line::from(format!("{:<11}{value}", field.label()));
            if i == cursor { line.style(cursor_style()) } else { line }
        })
        .collect();
    let chosen = s.launch.models.len();
    lines.push(Line::from(format!("models ({chosen} chosen)")).style(fg(s, Color::Cyan)));
    let list_rows = (area.height as usize).saturating_sub(lines.len());
    let model_cursor = match launch::row(cursor) {
        Row::Model(i) => i,
        Row::Field(_) => 0,
    };
    let offset = scroll_offset(model_cursor, list_rows);
    for (i, m) in s.zoo.iter().enumerate().skip(offset).take(list_rows) {
        let mark = if s.launch.models.contains(&m.entry.id) { "[x]" } else { "[ ]" };
        let line = Line::from(format!("{mark} {:<20} {}", m.entry.id, m.label()));
        lines.push(if launch::row(cursor) == Row::Model(i) {
            line.style(cursor_style())
        } else if m.is_converted() || !m.entry.has_file() {
            line
        } else {
            line.style(fg(s, Color::DarkGray))
        });
    }
    Paragraph::new(lines).render(area, buf);
}

fn render_plan(s: &State, area: Rect, buf: &mut Buffer) {
    let block = Block::default().borders(Borders::LEFT).title(" plan ");
    let inner = block.inner(area);
    block.render(area, buf);
    let key = |name| s.keymap.key_of(name).to_string();
    let plan = match launch::plan(s) {
        Ok(plan) => plan,
        Err(problem) => {
            let mut lines = vec![Line::from(problem).style(fg(s, Color::Yellow)), Line::from("")];
            let keys = [
                (key(Bind::Select), "choose a model"),
                (key(Bind::Edit), "type a folder, anno %, overrides"),
                (format!("{} {}", key(Bind::More), key(Bind::Less)), "dataset, executor, trials"),
                (key(Bind::DemoSweep), "demo sweep instead"),
            ];
            lines.extend(keys.iter().map(|(k, what)| Line::from(format!("{k:<6} {what}"))));
            Paragraph::new(lines).wrap(Wrap { trim: false }).render(inner, buf);
            return;
        }
    };
    let problems = launch::problems(s, &plan);
    let outcome = s.launch.outcome_for(&plan);
    let runs = plan.run_count();
    let head = match outcome {
        _ if !problems.is_empty() => Line::from(format!("{runs} runs, blocked:")),
        Some(Outcome::Ready(summary)) => {
            Line::from(format!("{runs} runs, {} new: {} to enqueue", summary.new, key(Bind::Enqueue)))
                .style(fg(s, Color::Green))
        }
        _ => Line::from(format!("{runs} runs: checking with sweep --dry-run")),
    };
    let mut lines = vec![head];
    let width = inner.width.max(1) as usize;
    let wrapped = |text: &str, color| -> Vec<Line<'static>> {
        let chars: Vec<char> = text.chars().collect();
        chars.chunks(width).map(|c| Line::from(c.iter().collect::<String>()).style(fg(s, color))).collect()
    };
    for problem in &problems {
        lines.extend(wrapped(problem, Color::Red));
    }
    if let Some(Outcome::Ready(summary)) = outcome
        && problems.is_empty()
        && let Some(time) = summary.time_text()
    {
        lines.extend(wrapped(&time, Color::Cyan));
    }
    lines.push(Line::from(format!("{} checks again", key(Bind::DryRun))));
    let budget = (inner.height as usize).saturating_sub(lines.len());
    let shown = if plan.run_count() > budget { budget.saturating_sub(1) } else { budget };
    lines.extend(plan.run_names().take(shown).map(Line::from));
    if plan.run_count() > shown {
        lines.push(Line::from(format!("... and {} more", plan.run_count() - shown)));
    }
    Paragraph::new(lines).render(inner, buf);
}
