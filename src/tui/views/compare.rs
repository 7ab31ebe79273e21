//! Compare: the validation loss of the selected runs on one chart. Trials of one model (same dataset and
//! label fraction) are drawn as their mean inside a min–max band unless every run is asked for.

use super::super::keymap::Bind;
use super::super::state::{RunView, State};
use super::chart::{self, BAND, Band, Curve};
use super::{fg, num};
use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Color;
use ratatui::text::Line;
use ratatui::widgets::{Paragraph, Widget, Wrap};
use std::collections::BTreeMap;

const SYMBOLS: &str = "abcdefghijklmnopqrstuvwxyz";
const COLORS: [Color; 6] = [Color::Green, Color::Yellow, Color::Cyan, Color::Magenta, Color::Blue, Color::Red];

/// The selected runs, grouped by trial group (each group's runs in id order); one group per run when
/// `each` asks for every run.
pub fn groups(s: &State) -> Vec<Vec<&RunView>> {
    let runs = s.selected.iter().filter_map(|id| s.runs.get(id));
    if s.compare_each {
        return runs.map(|run| vec![run]).collect();
    }
    let mut out: Vec<Vec<&RunView>> = Vec::new();
    let mut index: BTreeMap<(&str, &str, u32), usize> = BTreeMap::new();
    for run in runs {
        let i = *index.entry(run.trial_group()).or_insert_with(|| {
            out.push(Vec::new());
            out.len() - 1
        });
        out[i].push(run);
    }
    out
}

pub fn render(s: &State, area: Rect, buf: &mut Buffer) {
    let groups = groups(s);
    if groups.is_empty() {
        let hint = format!(
            "select runs with {} (or all trials of a model with {}) in Runs to compare their validation loss",
            s.keymap.key_of(Bind::Select),
            s.keymap.key_of(Bind::SelectTrials)
        );
        Paragraph::new(hint).wrap(Wrap { trim: false }).render(area, buf);
        return;
    }
    let legend_rows = (groups.len() + 1).min(7) as u16;
    let [legend, curves] = Layout::vertical([Constraint::Length(legend_rows), Constraint::Min(3)]).areas(area);
    let mode = if s.compare_each { "every run" } else { "trials as mean and min-max band" };
    let mut lines =
        vec![Line::from(format!("val loss, {mode} ({} toggles; band {BAND})", s.keymap.key_of(Bind::CompareBands)))];
    let (mut drawn, mut bands) = (Vec::new(), Vec::new());
    for (i, (group, symbol)) in groups.iter().zip(SYMBOLS.chars().cycle()).enumerate() {
        let style = fg(s, COLORS[i % COLORS.len()]);
        let label = if let [run] = group.as_slice() {
            drawn.push(Curve { series: &run.val, symbol, style });
            format!("{symbol} {}  val {}", run.id, num(run.val.last(), 4))
        } else {
            bands.push(Band { members: group.iter().map(|r| &r.val).collect(), symbol, style });
            let last: Vec<f64> = group.iter().filter_map(|r| r.val.last()).collect();
            let mean = (!last.is_empty()).then(|| last.iter().sum::<f64>() / last.len() as f64);
            let lo = last.iter().copied().reduce(f64::min);
            let hi = last.iter().copied().reduce(f64::max);
            let (dataset, init, anno) = group[0].trial_group();
            format!(
                "{symbol} {init} on {dataset} {anno}%: {} trials  val mean {} [{} .. {}]",
                group.len(),
                num(mean, 4),
                num(lo, 4),
                num(hi, 4)
            )
        };
        lines.push(Line::from(label).style(style));
    }
    Paragraph::new(lines).render(legend, buf);
    chart::render_with_bands(&drawn, &bands, &[], curves, buf);
}
