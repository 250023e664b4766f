//! The line benchmark's PNG: batch-time ratio, station CPU and station peak RSS against the
//! number of phones, one line per send path, each goal as a dashed line. Drawn with plotters'
//! bitmap backend and an embedded DejaVu Sans (ab_glyph), so no font needs to be installed.

use std::path::Path;
use std::sync::Once;

use anyhow::{anyhow, Context};
use plotters::prelude::*;
use plotters::style::{register_font, FontStyle};

use super::{cores_at_line_rate, ratio, Row, SendPath};

const FONT: &str = "sans-serif";
const WIDTH: u32 = 1500;
const HEIGHT: u32 = 480;

/// The three panels: what is plotted, its goal (the 32-phone targets) and how to read
/// the value from a row.
struct Panel {
    title: &'static str,
    y_label: &'static str,
    goal: f64,
    value: fn(&[Row], &Row) -> f64,
}

const PANELS: [Panel; 3] = [
    Panel {
        title: "batch wall time / one phone's",
        y_label: "× one phone",
        goal: 1.05,
        value: ratio,
    },
    Panel {
        title: "station CPU over one phone's batch time",
        y_label: "cores",
        goal: 0.25,
        value: cores_at_line_rate,
    },
    Panel {
        title: "station peak RSS (the phones' buffers less)",
        y_label: "MiB",
        goal: 256.0,
        value: |_, r| r.station_rss_mib(),
    },
];

fn register_embedded_font() -> anyhow::Result<()> {
    static ONCE: Once = Once::new();
    let mut failed = false;
    ONCE.call_once(|| {
        failed = register_font(FONT, FontStyle::Normal, dejavu::sans::regular()).is_err();
    });
    if failed {
        return Err(anyhow!("the embedded DejaVu Sans font could not be loaded"));
    }
    Ok(())
}

fn colour(send: SendPath) -> RGBColor {
    match send {
        SendPath::PrivateCopy => RGBColor(0x1f, 0x77, 0xb4),
        SendPath::HashPerPhone => RGBColor(0xd6, 0x27, 0x28),
    }
}

/// Draws `rows` into a PNG at `path`.
pub fn draw(path: &Path, rows: &[Row], rate: u64) -> anyhow::Result<()> {
    register_embedded_font()?;
    let root = BitMapBackend::new(path, (WIDTH, HEIGHT)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| anyhow!("{e}"))?;
    let caption = format!(
        "flashgate bench line: fastboot phones at {} MiB/s each (dashed: the 32-phone goal)",
        rate >> 20
    );
    let root = root
        .titled(&caption, (FONT, 20))
        .map_err(|e| anyhow!("{e}"))?;
    let max_phones = rows.iter().map(Row::phones).max().unwrap_or(1).max(2);
    let x_max = f64::from(max_phones) * 1.3;
    for (area, panel) in root.split_evenly((1, 3)).iter().zip(&PANELS) {
        draw_panel(area, panel, rows, x_max)
            .with_context(|| format!("the panel {}", panel.title))?;
    }
    root.present().map_err(|e| anyhow!("{e}"))?;
    Ok(())
}

fn draw_panel(
    area: &DrawingArea<BitMapBackend<'_>, plotters::coord::Shift>,
    panel: &Panel,
    rows: &[Row],
    x_max: f64,
) -> anyhow::Result<()> {
    let values: Vec<f64> = rows
        .iter()
        .map(|r| (panel.value)(rows, r))
        .filter(|v| v.is_finite())
        .collect();
    let y_max = values.iter().copied().fold(panel.goal, f64::max) * 1.15;
    let mut chart = ChartBuilder::on(area)
        .caption(panel.title, (FONT, 18))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d((0.8f64..x_max).log_scale(), 0f64..y_max)
        .map_err(|e| anyhow!("{e}"))?;
    chart
        .configure_mesh()
        .x_desc("phones")
        .y_desc(panel.y_label)
        .x_label_formatter(&|x| format!("{x:.0}"))
        .light_line_style(WHITE)
        .label_style((FONT, 13))
        .axis_desc_style((FONT, 14))
        .draw()
        .map_err(|e| anyhow!("{e}"))?;
    chart
        .draw_series(DashedLineSeries::new(
            [(0.8, panel.goal), (x_max, panel.goal)],
            6,
            4,
            BLACK.stroke_width(1),
        ))
        .map_err(|e| anyhow!("{e}"))?;
    for send in [SendPath::PrivateCopy, SendPath::HashPerPhone] {
        let points: Vec<(f64, f64)> = rows
            .iter()
            .filter(|r| r.send() == send)
            .map(|r| (f64::from(r.phones()), (panel.value)(rows, r)))
            .filter(|(_, y)| y.is_finite())
            .collect();
        if points.is_empty() {
            continue;
        }
        let style = colour(send);
        chart
            .draw_series(LineSeries::new(points.clone(), style.stroke_width(2)))
            .map_err(|e| anyhow!("{e}"))?
            .label(send.as_str())
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], style.stroke_width(2))
            });
        chart
            .draw_series(points.iter().map(|&p| Circle::new(p, 3, style.filled())))
            .map_err(|e| anyhow!("{e}"))?;
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .label_font((FONT, 13))
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
        .map_err(|e| anyhow!("{e}"))?;
    Ok(())
}
