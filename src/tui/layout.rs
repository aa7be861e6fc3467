//! Layout math: where each pane goes, how many fit on a page, and geometric focus movement.
//! Pure functions over `Rect`s, unit-tested without a terminal.

use std::ops::Range;

use ratatui::layout::Rect;

/// Smallest inner (content) size a pane may get; panes that do not fit go to further pages.
pub const MIN_INNER_W: u16 = 40;
pub const MIN_INNER_H: u16 = 8;
/// The same including the border.
pub const MIN_W: u16 = MIN_INNER_W + 2;
pub const MIN_H: u16 = MIN_INNER_H + 2;

/// The parts of the screen, top to bottom: the attach banner, the session sidebar left of the
/// panes, the panes, the event log, the status bar and the message line.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Regions {
    pub banner: Rect,
    /// Zero-sized when hidden, or when the screen is too narrow for it and one pane.
    pub sidebar: Rect,
    pub panes: Rect,
    pub log: Rect,
    pub status: Rect,
    pub message: Rect,
}

/// The sidebar's width on a screen `width` wide: a fifth of it, within 24..=36 columns.
pub fn sidebar_width(width: u16) -> u16 {
    (width / 5).clamp(24, 36)
}

/// Split the screen; `None` when it is too small to draw anything but a notice.
pub fn regions(area: Rect, banner: bool, log: bool, sidebar: bool) -> Option<Regions> {
    if area.width < 20 || area.height < 5 {
        return None;
    }
    let banner_h = u16::from(banner);
    // The log needs room: it only shows when the panes keep at least 8 rows.
    let log_h = if log && area.height >= 16 {
        (area.height / 3).clamp(5, 14)
    } else {
        0
    };
    let panes_h = area.height.saturating_sub(banner_h + log_h + 2);
    let banner = Rect::new(area.x, area.y, area.width, banner_h);
    let side_w = sidebar_width(area.width);
    let side_w = if sidebar && area.width >= side_w + MIN_W {
        side_w
    } else {
        0
    };
    let sidebar = Rect::new(area.x, area.y + banner_h, side_w, panes_h);
    let panes = Rect::new(
        area.x + side_w,
        area.y + banner_h,
        area.width - side_w,
        panes_h,
    );
    let log = Rect::new(area.x, panes.bottom(), area.width, log_h);
    let status = Rect::new(area.x, log.bottom(), area.width, 1);
    let message = Rect::new(area.x, status.bottom(), area.width, 1);
    Some(Regions {
        banner,
        sidebar,
        panes,
        log,
        status,
        message,
    })
}

/// A pane's content area: inside its border.
pub fn inner(r: Rect) -> Rect {
    Rect::new(
        r.x + 1,
        r.y + 1,
        r.width.saturating_sub(2),
        r.height.saturating_sub(2),
    )
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, strum::IntoStaticStr, strum::EnumString)]
#[strum(serialize_all = "lowercase", ascii_case_insensitive)]
pub enum LayoutKind {
    /// Balanced rows × columns.
    #[default]
    Grid,
    /// One large pane on the left, the others stacked on the right.
    Tall,
    /// Full-width rows.
    Stack,
    /// The focused pane fills the screen.
    Zoom,
}

impl LayoutKind {
    pub const ALL: [LayoutKind; 4] = [
        LayoutKind::Grid,
        LayoutKind::Tall,
        LayoutKind::Stack,
        LayoutKind::Zoom,
    ];

    pub fn name(self) -> &'static str {
        self.into()
    }

    pub fn parse(s: &str) -> Option<LayoutKind> {
        s.trim().parse().ok()
    }
}

/// The panes shown right now and where.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Plan {
    /// 0-based page and page count (zoom: the focused pane's position and the pane count).
    pub page: usize,
    pub pages: usize,
    /// Indices (into the ordered pane list) shown on this page, in `rects` order.
    pub range: Range<usize>,
    pub rects: Vec<Rect>,
}

/// Split `len` cells into `parts` nearly equal runs (the first ones get the remainder).
pub fn split(start: u16, len: u16, parts: usize) -> Vec<(u16, u16)> {
    let parts = parts.max(1) as u16;
    let base = len / parts;
    let extra = len % parts;
    let mut out = Vec::with_capacity(parts as usize);
    let mut pos = start;
    for i in 0..parts {
        let l = base + u16::from(i < extra);
        out.push((pos, l));
        pos += l;
    }
    out
}

fn fit(len: u16, min: u16) -> usize {
    (len / min).max(1) as usize
}

/// Panes per page for a layout in `area`.
pub fn capacity(kind: LayoutKind, area: Rect) -> usize {
    match kind {
        LayoutKind::Grid => fit(area.width, MIN_W) * fit(area.height, MIN_H),
        LayoutKind::Stack => fit(area.height, MIN_H),
        // The stack, and the main pane beside it where both fit.
        LayoutKind::Tall => fit(area.height, MIN_H) + usize::from(area.width >= 2 * MIN_W),
        LayoutKind::Zoom => 1,
    }
}

/// Columns per row for `n` panes in a grid over `area`: the shape whose panes' shorter side
/// is the longest, a row counting as 2.5 columns (a cell is about twice as tall as wide, and
/// agents' screens want rows more than a square does: 4 panes on 200x48 are 2x2 at 100x24,
/// not four 50-column strips), within the minimum pane size; ties go to fewer empty slots. Rows differ by at most one pane; the first rows take the
/// extra ones.
pub fn grid_rows(n: usize, area: Rect) -> Vec<usize> {
    if n == 0 {
        return Vec::new();
    }
    let max_cols = fit(area.width, MIN_W);
    let max_rows = fit(area.height, MIN_H);
    let shapes = (1..=n.min(max_cols)).map(|cols| (cols, n.div_ceil(cols)));
    let fitting = shapes.filter(|&(_, rows)| rows <= max_rows);
    // Reversed: of equal shapes, max_by_key keeps the last one it sees, the fewest columns.
    let best = fitting.rev().max_by_key(|&(cols, rows)| {
        let w = area.width as u32 / cols as u32;
        let h = area.height as u32 / rows as u32;
        ((2 * w).min(5 * h), std::cmp::Reverse(cols * rows - n))
    });
    let rows = best.map_or(n.div_ceil(n.min(max_cols)), |(_, rows)| rows);
    let base = n / rows;
    let extra = n % rows;
    (0..rows).map(|r| base + usize::from(r < extra)).collect()
}

fn grid_rects(n: usize, area: Rect) -> Vec<Rect> {
    let rows = grid_rows(n, area);
    let mut out = Vec::with_capacity(n);
    for ((y, h), count) in split(area.y, area.height, rows.len()).into_iter().zip(rows) {
        for (x, w) in split(area.x, area.width, count) {
            out.push(Rect::new(x, y, w, h));
        }
    }
    out
}

fn stack_rects(n: usize, area: Rect) -> Vec<Rect> {
    split(area.y, area.height, n)
        .into_iter()
        .map(|(y, h)| Rect::new(area.x, y, area.width, h))
        .collect()
}

fn tall_rects(n: usize, area: Rect) -> Vec<Rect> {
    if n <= 1 {
        return vec![area; n];
    }
    if area.width < 2 * MIN_W {
        return stack_rects(n, area);
    }
    let main_w = (area.width * 3 / 5).max(MIN_W).min(area.width - MIN_W);
    let mut out = vec![Rect::new(area.x, area.y, main_w, area.height)];
    let side = Rect::new(area.x + main_w, area.y, area.width - main_w, area.height);
    out.extend(stack_rects(n - 1, side));
    out
}

/// Lay out `total` panes with `focus` focused: the page holding the focused pane.
pub fn plan(kind: LayoutKind, total: usize, focus: usize, area: Rect) -> Plan {
    if total == 0 {
        return Plan {
            page: 0,
            pages: 1,
            range: 0..0,
            rects: Vec::new(),
        };
    }
    let focus = focus.min(total - 1);
    let cap = capacity(kind, area);
    let pages = total.div_ceil(cap);
    let page = focus / cap;
    let range = page * cap..((page + 1) * cap).min(total);
    let n = range.len();
    let rects = match kind {
        LayoutKind::Grid => grid_rects(n, area),
        LayoutKind::Stack => stack_rects(n, area),
        LayoutKind::Tall => tall_rects(n, area),
        LayoutKind::Zoom => vec![area],
    };
    Plan {
        page,
        pages,
        range,
        rects,
    }
}

/// The first pane index of page `page` (clamped), for page flipping.
pub fn page_start(kind: LayoutKind, total: usize, page: usize, area: Rect) -> usize {
    if total == 0 {
        return 0;
    }
    let cap = capacity(kind, area);
    let pages = total.div_ceil(cap);
    page.min(pages - 1) * cap
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dir {
    Left,
    Right,
    Up,
    Down,
}

/// The pane to move to from `rects[from]` in `dir`: the nearest one beyond that edge, panes
/// that overlap on the other axis first, then the closest centre.
pub fn neighbor(rects: &[Rect], from: usize, dir: Dir) -> Option<usize> {
    let f = *rects.get(from)?;
    let (fcx, fcy) = (
        f.x as i32 * 2 + f.width as i32,
        f.y as i32 * 2 + f.height as i32,
    );
    let mut best: Option<(i64, usize)> = None;
    for (i, r) in rects.iter().enumerate() {
        if i == from {
            continue;
        }
        let gap = match dir {
            Dir::Right if r.x >= f.right() => r.x - f.right(),
            Dir::Left if r.right() <= f.x => f.x - r.right(),
            Dir::Down if r.y >= f.bottom() => r.y - f.bottom(),
            Dir::Up if r.bottom() <= f.y => f.y - r.bottom(),
            _ => continue,
        };
        // Overlap and centre distance on the other axis.
        let (overlap, center) = if matches!(dir, Dir::Left | Dir::Right) {
            let center = r.y as i32 * 2 + r.height as i32 - fcy;
            (
                spans_overlap(f.y, f.bottom(), r.y, r.bottom()),
                center.abs(),
            )
        } else {
            let center = r.x as i32 * 2 + r.width as i32 - fcx;
            (spans_overlap(f.x, f.right(), r.x, r.right()), center.abs())
        };
        let score = if overlap { 0 } else { 1_000_000 } + gap as i64 * 1000 + center as i64;
        if best.is_none_or(|(s, _)| score < s) {
            best = Some((score, i));
        }
    }
    best.map(|(_, i)| i)
}

fn spans_overlap(a0: u16, a1: u16, b0: u16, b1: u16) -> bool {
    a0 < b1 && b0 < a1
}

/// Index of the rect containing the point.
pub fn hit(rects: &[Rect], x: u16, y: u16) -> Option<usize> {
    rects.iter().position(|r| r.contains((x, y).into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const AREA: Rect = Rect {
        x: 0,
        y: 0,
        width: 120,
        height: 38,
    };

    fn shape(n: usize, w: u16, h: u16) -> Vec<usize> {
        grid_rows(n, Rect::new(0, 0, w, h))
    }

    #[test]
    fn split_distributes_remainder() {
        assert_eq!(split(0, 10, 3), vec![(0, 4), (4, 3), (7, 3)]);
        assert_eq!(split(5, 9, 3), vec![(5, 3), (8, 3), (11, 3)]);
    }

    #[test]
    fn grid_balance() {
        assert_eq!(shape(1, 200, 48), vec![1]);
        assert_eq!(shape(2, 200, 48), vec![2], "wide screen: side by side");
        assert_eq!(shape(2, 80, 48), vec![1, 1], "narrow screen: stacked");
        assert_eq!(shape(3, 200, 48), vec![3]);
        assert_eq!(shape(4, 120, 38), vec![2, 2]);
        assert_eq!(shape(5, 200, 48), vec![3, 2]);
        assert_eq!(shape(9, 130, 38), vec![3, 3, 3]);
        assert_eq!(shape(7, 200, 48), vec![4, 3]);
        assert_eq!(shape(16, 200, 48), vec![4, 4, 4, 4]);
    }

    #[test]
    fn four_on_a_wide_screen_are_two_by_two() {
        let big = Rect::new(0, 0, 200, 48);
        assert_eq!(grid_rows(4, big), vec![2, 2]);
        assert_eq!(grid_rows(2, big), vec![2], "two side by side");
        assert_eq!(grid_rows(3, big), vec![3]);
    }

    #[test]
    fn grid_rects_tile_the_area() {
        let p = plan(LayoutKind::Grid, 5, 0, Rect::new(0, 0, 200, 48));
        assert_eq!(p.rects.len(), 5);
        assert_eq!(p.rects[0], Rect::new(0, 0, 67, 24));
        assert_eq!(p.rects[2], Rect::new(134, 0, 66, 24));
        // The second row has two panes that share the full width.
        assert_eq!(p.rects[3], Rect::new(0, 24, 100, 24));
        assert_eq!(p.rects[4], Rect::new(100, 24, 100, 24));
        let covered: u32 = p.rects.iter().map(|r| r.area()).sum();
        assert_eq!(covered, 200 * 48);
    }

    #[test]
    fn paging_enforces_minimum_size() {
        // 120x38: 2 columns of >=42 and 3 rows of >=10 fit.
        assert_eq!(capacity(LayoutKind::Grid, AREA), 6);
        let p = plan(LayoutKind::Grid, 9, 0, AREA);
        assert_eq!((p.page, p.pages, p.range.clone()), (0, 2, 0..6));
        for r in &p.rects {
            assert!(r.width >= MIN_W && r.height >= MIN_H, "{r:?}");
        }
        let p = plan(LayoutKind::Grid, 9, 7, AREA);
        assert_eq!((p.page, p.pages, p.range.clone()), (1, 2, 6..9));
        assert_eq!(page_start(LayoutKind::Grid, 9, 1, AREA), 6);
        assert_eq!(
            page_start(LayoutKind::Grid, 9, 5, AREA),
            6,
            "clamped to the last page"
        );
        // 20 sessions on a 200x50 screen: 16 per page.
        let big = Rect::new(0, 0, 200, 48);
        let p = plan(LayoutKind::Grid, 20, 0, big);
        assert_eq!((p.pages, p.range.len()), (2, 16));
        // A tiny window still shows one pane per page.
        let p = plan(LayoutKind::Grid, 3, 2, Rect::new(0, 0, 30, 6));
        assert_eq!((p.page, p.pages, p.rects.len()), (2, 3, 1));
    }

    #[test]
    fn tall_layout() {
        let p = plan(LayoutKind::Tall, 3, 0, AREA);
        assert_eq!(p.rects[0], Rect::new(0, 0, 72, 38));
        assert_eq!(p.rects[1], Rect::new(72, 0, 48, 19));
        assert_eq!(p.rects[2], Rect::new(72, 19, 48, 19));
        assert_eq!(capacity(LayoutKind::Tall, AREA), 4);
        let p = plan(LayoutKind::Tall, 6, 5, AREA);
        assert_eq!((p.page, p.pages, p.range), (1, 2, 4..6));
        assert_eq!(plan(LayoutKind::Tall, 1, 0, AREA).rects, vec![AREA]);
    }

    #[test]
    fn stack_layout() {
        let p = plan(LayoutKind::Stack, 2, 0, AREA);
        assert_eq!(
            p.rects,
            vec![Rect::new(0, 0, 120, 19), Rect::new(0, 19, 120, 19)]
        );
        assert_eq!(capacity(LayoutKind::Stack, AREA), 3);
        assert_eq!(plan(LayoutKind::Stack, 7, 6, AREA).pages, 3);
    }

    #[test]
    fn zoom_layout() {
        let p = plan(LayoutKind::Zoom, 4, 2, AREA);
        assert_eq!(
            (p.page, p.pages, p.range, p.rects),
            (2, 4, 2..3, vec![AREA])
        );
        assert_eq!(plan(LayoutKind::Grid, 0, 0, AREA).rects, vec![]);
    }

    #[test]
    fn geometric_navigation() {
        // 2x2 grid: 0 1 / 2 3
        let p = plan(LayoutKind::Grid, 4, 0, AREA);
        let r = &p.rects;
        assert_eq!(neighbor(r, 0, Dir::Right), Some(1));
        assert_eq!(neighbor(r, 0, Dir::Down), Some(2));
        assert_eq!(neighbor(r, 3, Dir::Up), Some(1));
        assert_eq!(neighbor(r, 3, Dir::Left), Some(2));
        assert_eq!(neighbor(r, 0, Dir::Left), None);
        assert_eq!(neighbor(r, 0, Dir::Up), None);
        // Tall: from the stack back to the main pane, and down the stack.
        let p = plan(LayoutKind::Tall, 3, 0, AREA);
        assert_eq!(neighbor(&p.rects, 2, Dir::Left), Some(0));
        assert_eq!(
            neighbor(&p.rects, 0, Dir::Right),
            Some(1),
            "equal distance: the first"
        );
        assert_eq!(neighbor(&p.rects, 1, Dir::Down), Some(2));
        let p = plan(LayoutKind::Tall, 4, 0, AREA);
        assert_eq!(
            neighbor(&p.rects, 0, Dir::Right),
            Some(2),
            "the stack pane nearest the centre"
        );
        // Uneven rows: from the wide bottom-left pane up goes to the pane above it.
        let p = plan(LayoutKind::Grid, 5, 0, Rect::new(0, 0, 200, 48));
        assert_eq!(neighbor(&p.rects, 3, Dir::Up), Some(0));
        assert_eq!(neighbor(&p.rects, 4, Dir::Up), Some(2));
        assert_eq!(hit(&p.rects, 150, 30), Some(4));
        assert_eq!(hit(&p.rects, 250, 30), None);
    }

    #[test]
    fn the_sidebar_takes_a_column_when_there_is_room() {
        let r = regions(Rect::new(0, 0, 120, 40), false, false, true).unwrap();
        assert_eq!(r.sidebar, Rect::new(0, 0, 24, 38));
        assert_eq!(r.panes, Rect::new(24, 0, 96, 38));
        let r = regions(Rect::new(0, 0, 200, 50), true, false, true).unwrap();
        assert_eq!((r.sidebar.width, r.sidebar.y, r.panes.x), (36, 1, 36));
        // Too narrow for it and a pane: the panes keep the width.
        let r = regions(Rect::new(0, 0, 60, 20), false, false, true).unwrap();
        assert_eq!((r.sidebar.width, r.panes.width), (0, 60));
        let r = regions(Rect::new(0, 0, 120, 40), false, false, false).unwrap();
        assert_eq!((r.sidebar.width, r.panes.width), (0, 120));
    }

    #[test]
    fn layout_names_round_trip() {
        for k in LayoutKind::ALL {
            assert_eq!(LayoutKind::parse(k.name()), Some(k));
        }
        assert_eq!(LayoutKind::parse("nope"), None);
    }
}
