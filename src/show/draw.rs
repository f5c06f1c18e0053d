//! Laying tiles out on a sheet and drawing it: images scaled into fixed slots (bicubic), box outlines,
//! wrapped text, a title; the sheet is a PNG and its layout a JSON beside it (which tile shows which
//! sample, and where each image landed, so a box on the sheet maps back to stored pixels).

use std::path::Path;

use plotters::prelude::*;
use serde::Serialize;

use super::tiles::{DrawnBox, TileContent};
use crate::error::{Error, Result};
use crate::stages::resize::resize_rgb;

const TEXT_SIZE: u32 = 13;
const LINE_HEIGHT: u32 = 16;
const MAX_LINES: usize = 8;
const PAD: u32 = 8;
const TITLE_HEIGHT: u32 = 28;

/// Where one image of a tile landed.
#[derive(Debug, Clone, Serialize)]
pub struct PlacedImage {
    /// Left edge on the sheet.
    pub x: u32,
    /// Top edge.
    pub y: u32,
    /// Drawn width.
    pub w: u32,
    /// Drawn height.
    pub h: u32,
    /// Sheet pixels per stored pixel.
    pub scale: f64,
}

/// One tile on the sheet.
#[derive(Debug, Clone, Serialize)]
pub struct PlacedTile {
    /// The row's key (image id, sample id or video id).
    pub key: String,
    /// The question, expression or statement shown (results mode).
    pub item: Option<usize>,
    /// Tile origin.
    pub x: u32,
    /// Tile origin.
    pub y: u32,
    /// Its images.
    pub images: Vec<PlacedImage>,
    /// Its text, one entry per drawn line.
    pub lines: Vec<String>,
}

/// The whole layout, written as `<sheet>.json`.
#[derive(Debug, Clone, Serialize)]
pub struct SheetLayout {
    /// Sheet size.
    pub width: u32,
    /// Sheet size.
    pub height: u32,
    /// Tile size.
    pub tile_width: u32,
    /// Tile size.
    pub tile_height: u32,
    /// Tiles per row.
    pub columns: usize,
    /// The tiles, in order.
    pub tiles: Vec<PlacedTile>,
}

fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut out = Vec::new();
    let mut line = String::new();
    for word in text.split_whitespace() {
        let len = line.chars().count();
        if len > 0 && len + 1 + word.chars().count() > width {
            out.push(std::mem::take(&mut line));
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    if !line.is_empty() || out.is_empty() {
        out.push(line);
    }
    out
}

fn blit(canvas: &mut [u8], canvas_w: u32, img: &crate::stages::RgbImage, x: u32, y: u32) {
    for row in 0..img.height {
        let src = (row * img.width * 3) as usize;
        let dst = (((y + row) * canvas_w + x) * 3) as usize;
        let n = (img.width * 3) as usize;
        canvas[dst..dst + n].copy_from_slice(&img.pixels[src..src + n]);
    }
}

fn draw_err(e: impl std::fmt::Display) -> Error {
    Error::internal(format!("drawing the sheet: {e}"))
}

/// Draws `tiles` (key, item, content) with `title` to `out` (PNG) and returns the layout.
pub fn render(
    tiles: &[(String, Option<usize>, TileContent)],
    title: &str,
    out: &Path,
) -> Result<SheetLayout> {
    crate::train::plot::register_font()?;
    let slots = tiles
        .iter()
        .map(|t| t.2.images.len())
        .max()
        .unwrap_or(1)
        .max(1);
    let (slot, columns) = match slots {
        1 => (224u32, tiles.len().clamp(1, 6)),
        2 => (224, tiles.len().clamp(1, 3)),
        _ => (128, 1),
    };
    let tile_w = slot * slots as u32 + PAD;
    let text_w = tile_w - PAD;
    let chars = (text_w / 7).max(8) as usize;
    let tile_h = slot + PAD + MAX_LINES as u32 * LINE_HEIGHT + PAD;
    let rows = tiles.len().div_ceil(columns) as u32;
    let width = columns as u32 * tile_w + PAD;
    let height = TITLE_HEIGHT + rows * tile_h + PAD;
    let mut buf = vec![255u8; (width * height * 3) as usize];
    let mut placed = Vec::new();
    let mut texts: Vec<(u32, u32, String, [u8; 3])> = Vec::new();
    let mut outlines: Vec<([i32; 4], [u8; 3])> = Vec::new();
    for (k, (key, item, content)) in tiles.iter().enumerate() {
        let tx = PAD + (k % columns) as u32 * tile_w;
        let ty = TITLE_HEIGHT + (k / columns) as u32 * tile_h;
        let mut images = Vec::new();
        for (i, img) in content.images.iter().enumerate() {
            let scale =
                (slot as f64 / img.width.max(1) as f64).min(slot as f64 / img.height.max(1) as f64);
            let (w, h) = (
                ((img.width as f64 * scale).round() as u32).clamp(1, slot),
                ((img.height as f64 * scale).round() as u32).clamp(1, slot),
            );
            let scaled = resize_rgb(img, w, h);
            let (x, y) = (tx + i as u32 * slot + (slot - w) / 2, ty + (slot - h) / 2);
            blit(&mut buf, width, &scaled, x, y);
            images.push(PlacedImage {
                x,
                y,
                w,
                h,
                scale: w as f64 / img.width.max(1) as f64,
            });
        }
        for DrawnBox {
            image,
            rect,
            colour,
        } in &content.boxes
        {
            if let Some(p) = images.get(*image) {
                let s = p.scale;
                let x0 = p.x as f64 + rect[0] * s;
                let y0 = p.y as f64 + rect[1] * s;
                let r = [
                    x0.round() as i32,
                    y0.round() as i32,
                    (x0 + rect[2] * s).round() as i32,
                    (y0 + rect[3] * s).round() as i32,
                ];
                outlines.push((r, *colour));
            }
        }
        let mut lines = Vec::new();
        for line in &content.lines {
            for part in wrap(&line.text, chars) {
                lines.push((part, line.colour.unwrap_or([0, 0, 0])));
            }
        }
        lines.truncate(MAX_LINES);
        for (n, (text, colour)) in lines.iter().enumerate() {
            let y = ty + slot + PAD + n as u32 * LINE_HEIGHT;
            texts.push((tx, y, text.clone(), *colour));
        }
        placed.push(PlacedTile {
            key: key.clone(),
            item: *item,
            x: tx,
            y: ty,
            images,
            lines: lines.into_iter().map(|(t, _)| t).collect(),
        });
    }
    {
        let root = BitMapBackend::with_buffer(&mut buf, (width, height)).into_drawing_area();
        let font = ("sans-serif", TEXT_SIZE).into_font();
        root.draw(&Text::new(
            title.to_string(),
            (PAD as i32, 6),
            ("sans-serif", 16).into_font(),
        ))
        .map_err(draw_err)?;
        for (r, c) in &outlines {
            let colour = RGBColor(c[0], c[1], c[2]);
            for inset in 0..2 {
                let rect = Rectangle::new(
                    [(r[0] - inset, r[1] - inset), (r[2] + inset, r[3] + inset)],
                    colour.stroke_width(1),
                );
                root.draw(&rect).map_err(draw_err)?;
            }
        }
        for (x, y, text, c) in &texts {
            let style = font.clone().color(&RGBColor(c[0], c[1], c[2]));
            root.draw(&Text::new(text.clone(), (*x as i32, *y as i32), style))
                .map_err(draw_err)?;
        }
        root.present().map_err(draw_err)?;
    }
    let img = image::RgbImage::from_raw(width, height, buf)
        .ok_or_else(|| Error::internal("sheet buffer size"))?;
    if let Some(dir) = out.parent().filter(|d| !d.as_os_str().is_empty()) {
        fs_err::create_dir_all(dir)?;
    }
    let tmp = crate::shards::commit::temp_path(out);
    img.save_with_format(&tmp, image::ImageFormat::Png)
        .map_err(|e| Error::internal(format!("writing {}: {e}", out.display())))?;
    fs_err::rename(&tmp, out)?;
    Ok(SheetLayout {
        width,
        height,
        tile_width: tile_w,
        tile_height: tile_h,
        columns,
        tiles: placed,
    })
}
