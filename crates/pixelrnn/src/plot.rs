//! A dependency-free SVG line chart for loss curves.

/// One line: `(label, colour, points)`.
pub type Series<'a> = (&'a str, &'a str, &'a [(f64, f64)]);

/// Width in pixels of a digit (and of '.' or '-', generously) in the 12 px sans-serif font.
const DIGIT_WIDTH: f64 = 7.0;

/// An SVG chart of the named series, axes scaled to fit.
pub fn line_chart(y_label: &str, x_label: &str, series: &[Series]) -> String {
    let (w, h, m): (f64, f64, f64) = (640.0, 400.0, 50.0);
    let all: Vec<(f64, f64)> = series.iter().flat_map(|s| s.2.iter().copied()).filter(|p| p.1.is_finite()).collect();
    let (x0, x1) = axis_range(all.iter().map(|p| p.0));
    let (y0, y1) = axis_range(all.iter().map(|p| p.1));
    // The y axis's values, bottom to top: its ends and three grid lines between them.
    let y_ticks: Vec<(f64, String)> = (0..5)
        .map(|k| {
            let y = y0 + (y1 - y0) * k as f64 / 4.0;
            (y, format!("{y:.3}"))
        })
        .collect();
    // The left margin holds the rotated y label (a line of text at x = 12) and, right-aligned
    // against the axis, the widest tick value, so long values (nats per CIFAR image) never run
    // into the label.
    let widest = y_ticks.iter().map(|t| t.1.len()).max().unwrap_or(0) as f64;
    let left = m.max(24.0 + widest * DIGIT_WIDTH + 4.0);
    let sx = |x: f64| left + (x - x0) / (x1 - x0) * (w - left - m);
    let sy = |y: f64| h - m - (y - y0) / (y1 - y0) * (h - 2.0 * m);
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" font-family=\"sans-serif\" font-size=\"12\">\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n\
<line x1=\"{left}\" y1=\"{b}\" x2=\"{r}\" y2=\"{b}\" stroke=\"black\"/><line x1=\"{left}\" y1=\"{m}\" x2=\"{left}\" y2=\"{b}\" stroke=\"black\"/>\n\
<text x=\"{cx}\" y=\"{xl}\" text-anchor=\"middle\">{x_label}</text><text x=\"12\" y=\"{cy}\" transform=\"rotate(-90 12 {cy})\" text-anchor=\"middle\">{y_label}</text>\n\
<text x=\"{left}\" y=\"{xt}\">{x0:.0}</text><text x=\"{r}\" y=\"{xt}\" text-anchor=\"end\">{x1:.0}</text>\n",
        x_label = escape(x_label),
        y_label = escape(y_label),
        b = h - m,
        r = w - m,
        cx = (left + w - m) / 2.0,
        cy = h / 2.0,
        xl = h - 10.0,
        xt = h - m + 15.0,
    );
    for (k, (y, text)) in y_ticks.iter().enumerate() {
        // Light grid lines between the two ends of the axis.
        if k > 0 && k < 4 {
            svg += &format!(
                "<line x1=\"{left}\" y1=\"{p:.1}\" x2=\"{r}\" y2=\"{p:.1}\" stroke=\"#dddddd\"/>",
                p = sy(*y),
                r = w - m
            );
        }
        svg +=
            &format!("<text x=\"{yt}\" y=\"{p:.1}\" text-anchor=\"end\">{text}</text>\n", p = sy(*y), yt = left - 4.0);
    }
    for (i, (label, colour, points)) in series.iter().enumerate() {
        let pts: Vec<String> =
            points.iter().filter(|p| p.1.is_finite()).map(|&(x, y)| format!("{:.1},{:.1}", sx(x), sy(y))).collect();
        if !pts.is_empty() {
            svg += &format!(
                "<polyline fill=\"none\" stroke=\"{colour}\" stroke-width=\"1.5\" points=\"{}\"/>\n",
                pts.join(" ")
            );
        }
        // The legend, right-aligned at the top (loss curves fall away from there).
        svg += &format!(
            "<text x=\"{}\" y=\"{}\" text-anchor=\"end\" fill=\"{colour}\">{}</text>\n",
            w - 8.0,
            m + 15.0 * i as f64,
            escape(label)
        );
    }
    svg + "</svg>\n"
}

/// `text` for an SVG text node.
fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

/// The span of `values` for an axis: (0, 1) when empty, widened by 1 each way when flat.
fn axis_range(values: impl Iterator<Item = f64>) -> (f64, f64) {
    let (lo, hi) = values.fold((f64::MAX, f64::MIN), |(a, b), v| (a.min(v), b.max(v)));
    if lo > hi {
        (0.0, 1.0)
    } else if hi > lo {
        (lo, hi)
    } else {
        (lo - 1.0, hi + 1.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_escaped_right_aligned_and_the_axis_has_grid_values() {
        let a = [(0.0, 8.0), (10.0, 4.0)];
        let svg = line_chart("bits/dim", "step", &[("h<16 & skip", "#000000", &a)]);
        assert!(svg.contains(">h&lt;16 &amp; skip</text>"), "{svg}");
        assert!(svg.contains("text-anchor=\"end\" fill=\"#000000\""), "{svg}");
        for v in ["4.000", "5.000", "6.000", "7.000", "8.000"] {
            assert!(svg.contains(&format!(">{v}</text>")), "{v} missing: {svg}");
        }
        assert!(svg.contains("points=\"63.0,50.0 590.0,350.0\""), "{svg}");
    }

    #[test]
    fn long_tick_values_widen_the_left_margin_instead_of_running_into_the_y_label() {
        let a = [(0.0, 11242.295), (10.0, 12041.976)];
        let svg = line_chart("nats <per image>", "step", &[("m2", "#000000", &a)]);
        assert!(svg.contains(">nats &lt;per image&gt;</text>"), "{svg}");
        // "12041.976" is 9 characters, right-aligned at the axis minus 4 px: its left edge must
        // clear the rotated label's line (x = 12, half a 12 px line each way).
        let axis = 24.0 + 9.0 * DIGIT_WIDTH + 4.0;
        assert!(svg.contains(&format!("<line x1=\"{axis}\" y1=\"50\" x2=\"{axis}\"")), "{svg}");
        assert!(
            svg.contains(&format!("<text x=\"{}\" y=\"50.0\" text-anchor=\"end\">12041.976</text>", axis - 4.0)),
            "{svg}"
        );
        assert!(axis - 4.0 - 9.0 * DIGIT_WIDTH >= 12.0 + 6.0);
        assert!(svg.contains(&format!("points=\"{axis:.1},350.0 590.0,50.0\"")), "{svg}");
    }
}
