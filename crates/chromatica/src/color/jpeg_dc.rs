//! A JPEG at 1/8 scale from its DC coefficients alone.
//!
//! **The maths.** A JPEG stores each 8 × 8 block of a component as 64 DCT
//! coefficients. At 1/8 scale the inverse DCT of a block is one sample, the
//! block's mean, and that depends on the DC coefficient only:
//! `sample = clamp(128 + round(DC · Q₀ / 8))`, with `Q₀` the first entry of
//! the component's quantization table. That is libjpeg's `jpeg_idct_1x1`,
//! `DESCALE(DC · Q₀, 3)`, which rounds halves up; the chroma is then
//! upsampled to the luma's resolution (`upsample`: libjpeg's triangle
//! filter) and converted to RGB as libjpeg's `ycc_rgb_convert` does (16-bit
//! fixed point).
//!
//! **Why our own decoder.** A progressive JPEG puts the DC coefficients in
//! scans of their own (`Ss = Se = 0`); the AC scans hold most of the file.
//! The 1/8-scale image needs only the DC scans: an AC scan that comes
//! before the last of them is stepped over by looking for the next marker,
//! without decoding a bit of it, and reading stops once every component's
//! DC values are whole. jpeg-decoder, zune-jpeg and libjpeg-turbo all
//! entropy-decode and buffer every coefficient of a progressive file
//! whatever the output scale: on an 18-megapixel progressive wallpaper
//! Pillow (libjpeg-turbo, at 1/4) takes 0.6 s, and our whole histogram
//! 31 ms. A sequential JPEG interleaves AC codes with the DC codes, so
//! each code is still Huffman-decoded, but the AC values are only skipped:
//! nothing is dequantized or transformed, which gains far less (1.0–1.7×
//! per file against Pillow).
//!
//! **What it takes.** 8-bit Huffman-coded frames, sequential (SOF0, SOF1) or
//! progressive (SOF2), with one component (grey) or three (YCbCr, or RGB when
//! an Adobe marker says "no transform" or the components are named R, G, B),
//! integral sampling ratios, restart intervals. Anything else — arithmetic
//! coding, 12 bits, lossless, hierarchical, CMYK, a height given later by a
//! DNL marker, a malformed or truncated entropy stream — returns `None`, and the caller
//! falls back to a general decoder, which then decodes it or names the
//! fault. So this decoder never has to be more tolerant than it is correct.
//!
//! Every read is bounds-checked, every loop is bounded by the frame's block
//! count or the file's length, and the arithmetic on hostile values wraps
//! instead of overflowing.

use image::RgbImage;

/// One Huffman table: a 9-bit lookahead for the short codes, the canonical
/// `maxcode`/`valoffset` walk (JPEG Annex F.2.2.3) for the long ones.
struct Huffman {
    /// `(length << 8) | symbol` of the code that the 9 bits start with, or 0
    /// when that code is longer than 9 bits.
    lookup: Box<[u16; 1 << LOOKAHEAD]>,
    /// The largest code of each length 1..=16, -1 when there is none.
    maxcode: [i32; 17],
    /// Index into `symbols` of a length's first code, minus that code.
    valoffset: [i32; 17],
    symbols: Vec<u8>,
}

const LOOKAHEAD: u32 = 9;

impl Huffman {
    /// From a DHT table's 16 counts and its symbols; `None` if the counts
    /// describe more codes than fit their lengths.
    fn new(counts: &[u8; 16], symbols: &[u8]) -> Option<Huffman> {
        let mut lookup = Box::new([0u16; 1 << LOOKAHEAD]);
        let mut maxcode = [-1i32; 17];
        let mut valoffset = [0i32; 17];
        let (mut code, mut k) = (0u32, 0usize);
        for len in 1..=16u32 {
            let n = u32::from(counts[len as usize - 1]);
            valoffset[len as usize] = k as i32 - code as i32;
            for _ in 0..n {
                if code >= 1 << len {
                    return None;
                }
                if len <= LOOKAHEAD {
                    let shift = LOOKAHEAD - len;
                    let first = (code << shift) as usize;
                    let entry = ((len as u16) << 8) | u16::from(symbols[k]);
                    lookup[first..first + (1 << shift)].fill(entry);
                }
                code += 1;
                k += 1;
            }
            if n > 0 {
                maxcode[len as usize] = code as i32 - 1;
            }
            code <<= 1;
        }
        Some(Huffman { lookup, maxcode, valoffset, symbols: symbols.to_vec() })
    }
}

/// The entropy-coded bits of one scan: bytes up to the next marker, with
/// the stuffed zero after each 0xFF removed. Past the marker it reads zeros
/// and counts them, so that a scan which needs more bits than it has is
/// caught (`overrun`) instead of being decoded from invented data.
struct Bits<'a> {
    data: &'a [u8],
    pos: usize,
    acc: u64,
    /// Bits held in `acc`, from its top.
    n: u32,
    /// Of those, the zeros appended at the end, past the scan's data.
    pad: u32,
    at_marker: bool,
    overrun: bool,
}

impl<'a> Bits<'a> {
    fn new(data: &'a [u8], pos: usize) -> Self {
        Bits { data, pos, acc: 0, n: 0, pad: 0, at_marker: false, overrun: false }
    }

    /// Tops `acc` up to more than 56 bits. While the next 8 bytes hold no
    /// 0xFF (no stuffing, no marker: nearly always) they are taken in one
    /// load; otherwise byte by byte.
    #[inline(always)]
    fn fill(&mut self) {
        if self.n > 56 {
            return;
        }
        if let Some(chunk) = self.data.get(self.pos..self.pos + 8) {
            let word = u64::from_be_bytes(chunk.try_into().expect("8 bytes"));
            // A byte of `word` is 0xFF where the same byte of `!word` is 0.
            let inverse = !word;
            if inverse.wrapping_sub(0x0101_0101_0101_0101) & !inverse & 0x8080_8080_8080_8080 == 0 {
                let k = (64 - self.n) / 8;
                self.acc |= (word >> (64 - 8 * k)) << (64 - self.n - 8 * k);
                self.pos += k as usize;
                self.n += 8 * k;
                return;
            }
        }
        self.fill_slowly();
    }

    fn fill_slowly(&mut self) {
        while self.n <= 56 {
            let mut byte = 0;
            if !self.at_marker {
                match self.data.get(self.pos) {
                    Some(&0xFF) if self.data.get(self.pos + 1) == Some(&0) => {
                        byte = 0xFF;
                        self.pos += 2;
                    }
                    Some(&0xFF) | None => self.at_marker = true,
                    Some(&b) => {
                        byte = b;
                        self.pos += 1;
                    }
                }
            }
            if self.at_marker {
                self.pad += 8;
            }
            self.acc |= u64::from(byte) << (56 - self.n);
            self.n += 8;
        }
    }

    #[inline(always)]
    fn consume(&mut self, len: u32) {
        self.acc <<= len;
        self.n -= len;
        if self.n < self.pad {
            self.overrun = true;
            self.pad = self.n;
        }
    }

    /// The next `len` (0..=16) bits as an unsigned number.
    fn take(&mut self, len: u32) -> u32 {
        if len == 0 {
            return 0;
        }
        self.fill();
        let v = (self.acc >> (64 - len)) as u32;
        self.consume(len);
        v
    }

    /// The next `len` bits as a JPEG magnitude category value (F.2.2.1's
    /// EXTEND): a leading 0 bit means a negative number.
    fn signed(&mut self, len: u32) -> i32 {
        let len = len.min(16);
        let v = self.take(len) as i32;
        if len > 0 && v < 1 << (len - 1) {
            v - (1 << len) + 1
        } else {
            v
        }
    }

    /// One Huffman-coded symbol; `None` for a bit pattern that is no code.
    fn symbol(&mut self, table: &Huffman) -> Option<u8> {
        let (len, symbol) = self.peek_symbol(table)?;
        self.consume(len);
        Some(symbol)
    }

    /// The length and symbol of the code that the next bits start with,
    /// without consuming it.
    #[inline(always)]
    fn peek_symbol(&mut self, table: &Huffman) -> Option<(u32, u8)> {
        self.fill();
        let entry = table.lookup[(self.acc >> (64 - LOOKAHEAD)) as usize];
        if entry != 0 {
            return Some((u32::from(entry >> 8), entry as u8));
        }
        let bits16 = (self.acc >> 48) as i32;
        for len in LOOKAHEAD + 1..=16 {
            let code = bits16 >> (16 - len);
            if code <= table.maxcode[len as usize] {
                let i = table.valoffset[len as usize] + code;
                return Some((len, *table.symbols.get(i as usize)?));
            }
        }
        None
    }

    /// After a restart interval: drop the bits left of it and step over the
    /// RSTn marker that must follow. `false` if another marker comes first.
    fn restart(&mut self) -> bool {
        let Some(at) = find_marker(self.data, self.pos, false) else { return false };
        let marker = self.data.get(at + 1).copied().unwrap_or(0);
        if !(0xD0..=0xD7).contains(&marker) {
            return false;
        }
        *self = Bits::new(self.data, at + 2);
        true
    }
}

/// Position of the next marker at or after `from` (a 0xFF that is not a
/// stuffed 0xFF00, not fill, and not an RSTn inside entropy data when
/// `skip_rst`), or `None` at the end of the data.
fn find_marker(data: &[u8], mut from: usize, skip_rst: bool) -> Option<usize> {
    loop {
        let at = from + memchr::memchr(0xFF, data.get(from..)?)?;
        match data.get(at + 1) {
            None => return None,
            Some(0x00) | Some(0xFF) => from = at + 1,
            Some(0xD0..=0xD7) if skip_rst => from = at + 2,
            Some(_) => return Some(at),
        }
    }
}

/// Where the entropy data from `from` ends: the next marker that is not an
/// RSTn, or the end of the file.
fn end_of_scan(data: &[u8], from: usize) -> usize {
    find_marker(data, from, true).unwrap_or(data.len())
}

struct Component {
    id: u8,
    h: usize,
    v: usize,
    tq: usize,
    /// `Q₀` latched at the component's first scan (as the JPEG standard says).
    q0: Option<i64>,
    /// Blocks per row and rows of blocks in the DC grid: the MCU-padded
    /// size, which interleaved scans cover.
    grid_w: usize,
    grid_h: usize,
    /// Blocks the component really has, which a scan of it alone covers.
    real_w: usize,
    real_h: usize,
    dc: Vec<i32>,
    /// The bit position the DC values are known down to: `None` before the
    /// first DC scan, 0 once they are whole (a progressive file's first DC
    /// scan may stop at bit `Al`; each refinement scan adds the next bit).
    dc_bit: Option<u32>,
}

struct Frame {
    progressive: bool,
    width: usize,
    height: usize,
    hmax: usize,
    vmax: usize,
    mcus_x: usize,
    mcus_y: usize,
    components: Vec<Component>,
}

fn be16(data: &[u8], at: usize) -> Option<usize> {
    Some(usize::from(u16::from_be_bytes([*data.get(at)?, *data.get(at + 1)?])))
}

fn parse_frame(seg: &[u8], progressive: bool, max_pixels: u64) -> Option<Frame> {
    let (&precision, rest) = seg.split_first()?;
    let height = be16(rest, 0)?;
    let width = be16(rest, 2)?;
    let nf = usize::from(*rest.get(4)?);
    if precision != 8 || width == 0 || height == 0 || !(nf == 1 || nf == 3) {
        return None;
    }
    if width as u64 * height as u64 > max_pixels || rest.len() < 5 + 3 * nf {
        return None;
    }
    let mut components = Vec::with_capacity(nf);
    for c in rest[5..5 + 3 * nf].chunks_exact(3) {
        let (h, v, tq) = (usize::from(c[1] >> 4), usize::from(c[1] & 15), usize::from(c[2]));
        if !(1..=4).contains(&h) || !(1..=4).contains(&v) || tq > 3 {
            return None;
        }
        components.push(Component {
            id: c[0],
            h,
            v,
            tq,
            q0: None,
            grid_w: 0,
            grid_h: 0,
            real_w: 0,
            real_h: 0,
            dc: Vec::new(),
            dc_bit: None,
        });
    }
    if nf == 1 {
        // A lone component's scans are never interleaved: its MCU is one
        // block, whatever sampling factors it declares.
        components[0].h = 1;
        components[0].v = 1;
    }
    let hmax = components.iter().map(|c| c.h).max()?;
    let vmax = components.iter().map(|c| c.v).max()?;
    if components.iter().any(|c| hmax % c.h != 0 || vmax % c.v != 0)
        || components.iter().map(|c| c.h * c.v).sum::<usize>() > 10
    {
        return None;
    }
    let (mcus_x, mcus_y) = (width.div_ceil(8 * hmax), height.div_ceil(8 * vmax));
    for c in &mut components {
        c.grid_w = mcus_x * c.h;
        c.grid_h = mcus_y * c.v;
        c.real_w = (width * c.h).div_ceil(hmax).div_ceil(8);
        c.real_h = (height * c.v).div_ceil(vmax).div_ceil(8);
        c.dc = vec![0; c.grid_w * c.grid_h];
    }
    Some(Frame { progressive, width, height, hmax, vmax, mcus_x, mcus_y, components })
}

/// What a scan does to each of its blocks.
#[derive(Clone, Copy)]
enum Pass {
    /// Sequential: the DC difference, then every AC code skipped.
    Sequential,
    /// Progressive, first DC scan: the difference, shifted left by `al`.
    DcFirst { al: u32 },
    /// Progressive DC refinement: one more bit at position `al`.
    DcRefine { al: u32 },
}

struct ScanComponent<'t> {
    index: usize,
    dc: &'t Huffman,
    /// Only a sequential scan reads AC codes.
    ac: Option<&'t Huffman>,
}

struct Decoder<'a> {
    data: &'a [u8],
    dc_tables: [Option<Huffman>; 4],
    ac_tables: [Option<Huffman>; 4],
    q0: [Option<i64>; 4],
    restart_interval: usize,
    adobe_transform: Option<u8>,
    frame: Option<Frame>,
}

impl Decoder<'_> {
    fn define_huffman(&mut self, mut seg: &[u8]) -> Option<()> {
        while !seg.is_empty() {
            let (class, id) = (seg[0] >> 4, usize::from(seg[0] & 15));
            let counts: &[u8; 16] = seg.get(1..17)?.try_into().ok()?;
            let total: usize = counts.iter().map(|&c| usize::from(c)).sum();
            let symbols = seg.get(17..17 + total)?;
            if id > 3 || class > 1 || total > 256 {
                return None;
            }
            let table = Some(Huffman::new(counts, symbols)?);
            if class == 0 {
                self.dc_tables[id] = table;
            } else {
                self.ac_tables[id] = table;
            }
            seg = &seg[17 + total..];
        }
        Some(())
    }

    fn define_quantization(&mut self, mut seg: &[u8]) -> Option<()> {
        while !seg.is_empty() {
            let (precision, id) = (seg[0] >> 4, usize::from(seg[0] & 15));
            let len = if precision == 0 { 64 } else { 128 };
            let table = seg.get(1..1 + len)?;
            if id > 3 || precision > 1 {
                return None;
            }
            // Entry 0 of the zig-zag order is the DC coefficient's step.
            let q0 =
                if precision == 0 { i64::from(table[0]) } else { i64::from(u16::from_be_bytes([table[0], table[1]])) };
            self.q0[id] = Some(q0);
            seg = &seg[1 + len..];
        }
        Some(())
    }

    /// Decodes or skips the scan whose header is `seg` and whose entropy
    /// data starts at `pos`; returns where its data ends (the next marker).
    fn scan(&mut self, seg: &[u8], pos: usize) -> Option<usize> {
        let frame = self.frame.as_mut()?;
        let ns = usize::from(*seg.first()?);
        let spec = seg.get(1 + 2 * ns..4 + 2 * ns)?;
        let (ss, se, ah, al) = (spec[0], spec[1], u32::from(spec[2] >> 4), u32::from(spec[2] & 15));
        let pass = match (frame.progressive, ss, ah) {
            (false, _, _) => Pass::Sequential,
            (true, 0, 0) if se == 0 => Pass::DcFirst { al },
            (true, 0, _) if se == 0 => Pass::DcRefine { al },
            (true, 0, _) => return None,
            // An AC scan: nothing in it changes a 1/8-scale sample.
            (true, _, _) => return Some(end_of_scan(self.data, pos)),
        };
        if ns == 0 || ns > frame.components.len() || al > 13 {
            return None;
        }
        let mut scan = Vec::with_capacity(ns);
        for c in seg[1..1 + 2 * ns].chunks_exact(2) {
            let index = frame.components.iter().position(|f| f.id == c[0])?;
            let (dc_table, ac_table) = (usize::from(c[1] >> 4), usize::from(c[1] & 15));
            if dc_table > 3 || ac_table > 3 || scan.iter().any(|s: &ScanComponent| s.index == index) {
                return None;
            }
            let dc = self.dc_tables[dc_table].as_ref()?;
            let ac = match pass {
                Pass::Sequential => Some(self.ac_tables[ac_table].as_ref()?),
                _ => None,
            };
            let component = &mut frame.components[index];
            if component.q0.is_none() {
                component.q0 = Some(self.q0[component.tq]?);
            }
            component.dc_bit = match (pass, component.dc_bit) {
                (Pass::Sequential, None) => Some(0),
                (Pass::DcFirst { al }, None) => Some(al),
                (Pass::DcRefine { al }, Some(bit)) if bit == ah && al + 1 == ah => Some(al),
                _ => return None,
            };
            scan.push(ScanComponent { index, dc, ac });
        }
        // The blocks of the scan, in order: MCU by MCU when interleaved (each
        // component's h × v blocks in turn), the component's own blocks row
        // by row when alone (each an MCU).
        let mcu_count = match scan.as_slice() {
            [alone] => frame.components[alone.index].real_w * frame.components[alone.index].real_h,
            _ => frame.mcus_x * frame.mcus_y,
        };
        let mut bits = Bits::new(self.data, pos);
        let mut pred = [0i32; 4];
        for mcu in 0..mcu_count {
            if self.restart_interval > 0 && mcu > 0 && mcu % self.restart_interval == 0 {
                if !bits.restart() {
                    return None;
                }
                pred = [0; 4];
            }
            for (k, s) in scan.iter().enumerate() {
                let c = &mut frame.components[s.index];
                if ns == 1 {
                    let at = (mcu / c.real_w) * c.grid_w + mcu % c.real_w;
                    block(&mut bits, &mut c.dc[at], &mut pred[k], pass, s)?;
                    continue;
                }
                let (mx, my) = (mcu % frame.mcus_x, mcu / frame.mcus_x);
                for by in 0..c.v {
                    for bx in 0..c.h {
                        let at = (my * c.v + by) * c.grid_w + mx * c.h + bx;
                        block(&mut bits, &mut c.dc[at], &mut pred[k], pass, s)?;
                    }
                }
            }
            if bits.overrun {
                return None;
            }
        }
        Some(end_of_scan(self.data, bits.pos))
    }
}

/// One block of a scan: its DC coefficient updated, its AC codes skipped.
fn block(bits: &mut Bits, dc: &mut i32, pred: &mut i32, pass: Pass, tables: &ScanComponent) -> Option<()> {
    match pass {
        Pass::Sequential | Pass::DcFirst { .. } => {
            let category = u32::from(bits.symbol(tables.dc)?);
            *pred = pred.wrapping_add(bits.signed(category));
            let al = if let Pass::DcFirst { al } = pass { al } else { 0 };
            *dc = pred.wrapping_shl(al);
        }
        Pass::DcRefine { al } => {
            if bits.take(1) == 1 {
                *dc |= 1 << al;
            }
        }
    }
    if let Some(ac) = tables.ac {
        let mut k = 1;
        while k < 64 {
            // The code and the value bits after it go in one step: at most
            // 16 + 15 bits, and `fill` left more than 56.
            let (len, rs) = bits.peek_symbol(ac)?;
            let (run, size) = (rs >> 4, u32::from(rs & 15));
            bits.consume(len + size);
            if size == 0 {
                if run != 15 {
                    break;
                }
                k += 16;
            } else {
                k += usize::from(run) + 1;
            }
        }
    }
    Some(())
}

/// The image at 1/8 scale (`ceil(width / 8) × ceil(height / 8)`, each pixel
/// the mean of an 8 × 8 block), or `None` when the file is not a JPEG this
/// decoder takes or is malformed (see the module comment). `max_pixels`
/// bounds the frame's width × height before anything is allocated.
pub fn decode_eighth(data: &[u8], max_pixels: u64) -> Option<RgbImage> {
    if data.get(..2)? != [0xFF, 0xD8] {
        return None;
    }
    let mut d = Decoder {
        data,
        dc_tables: [None, None, None, None],
        ac_tables: [None, None, None, None],
        q0: [None; 4],
        restart_interval: 0,
        adobe_transform: None,
        frame: None,
    };
    let mut pos = 2;
    loop {
        // Once every component's DC values are whole, nothing later can
        // change a 1/8-scale sample: a progressive file's AC scans are not
        // even looked at, and a file cut short after its last DC scan
        // decodes as well as the whole one. A file that ends earlier is
        // refused below.
        if pos >= data.len() || d.frame.as_ref().is_some_and(|f| f.components.iter().all(|c| c.dc_bit == Some(0))) {
            break;
        }
        // Fill bytes (0xFF) may precede a marker.
        if data[pos] != 0xFF {
            return None;
        }
        while *data.get(pos)? == 0xFF {
            pos += 1;
        }
        let marker = data[pos];
        pos += 1;
        match marker {
            0xD9 => break,
            0xD0..=0xD7 | 0x01 => continue,
            0xD8 => return None,
            _ => {}
        }
        let len = be16(data, pos)?;
        let seg = data.get(pos + 2..pos + len.max(2))?;
        if len < 2 {
            return None;
        }
        pos += len;
        match marker {
            0xC0..=0xC2 if d.frame.is_none() => d.frame = Some(parse_frame(seg, marker == 0xC2, max_pixels)?),
            0xC4 => d.define_huffman(seg)?,
            0xDB => d.define_quantization(seg)?,
            0xDD => d.restart_interval = be16(seg, 0)?,
            0xDA => pos = d.scan(seg, pos)?,
            // "Adobe": byte 11 is the colour transform (0: none, 1: YCbCr).
            0xEE if seg.starts_with(b"Adobe") => d.adobe_transform = seg.get(11).copied(),
            // Other frame types (lossless, hierarchical, arithmetic), a
            // second frame, DNL, and the hierarchical mode's DHP and EXP
            // (its frames are stages of one image): not for this decoder.
            0xC0..=0xCF | 0xDC | 0xDE | 0xDF => return None,
            _ => {}
        }
    }
    let frame = d.frame?;
    if frame.components.iter().any(|c| c.dc_bit != Some(0)) {
        return None;
    }
    to_rgb(&frame, d.adobe_transform)
}

/// The 1/8-scale samples of every component, brought to the luma's
/// resolution ([`upsample`]) and converted to RGB.
fn to_rgb(frame: &Frame, adobe_transform: Option<u8>) -> Option<RgbImage> {
    let (w, h) = (frame.width.div_ceil(8), frame.height.div_ceil(8));
    let planes: Vec<Vec<u8>> = frame
        .components
        .iter()
        .map(|c| {
            let q0 = c.q0.unwrap_or(0);
            let samples: Vec<u8> =
                c.dc.iter().map(|&dc| (((i64::from(dc) * q0 + 4) >> 3) + 128).clamp(0, 255) as u8).collect();
            upsample(&samples, c, (frame.hmax / c.h, frame.vmax / c.v), (w, h))
        })
        .collect();
    let ids: Vec<u8> = frame.components.iter().map(|c| c.id).collect();
    let rgb_stored = adobe_transform == Some(0) || ids == b"RGB";
    let mut out = Vec::with_capacity(w * h * 3);
    for i in 0..w * h {
        let pixel = match planes.as_slice() {
            [grey] => [grey[i]; 3],
            [r, g, b] if rgb_stored => [r[i], g[i], b[i]],
            [y, cb, cr] => ycc_to_rgb(y[i], cb[i], cr[i]),
            _ => return None,
        };
        out.extend_from_slice(&pixel);
    }
    RgbImage::from_raw(w as u32, h as u32, out)
}

/// A component's samples (row stride `c.grid_w`, `c.real_w × c.real_h` of
/// them real) upsampled by `factor` and cropped to `size`. Factors of 2 use
/// libjpeg's "fancy" triangle filter (`jdsample.c`: each output sample is
/// ¾ of its nearer input and ¼ of the next, with libjpeg's rounding biases;
/// past an edge the edge sample stands in), which jpeg-decoder and stb_image
/// also use; other factors replicate, as libjpeg's `int_upsample` does.
fn upsample(samples: &[u8], c: &Component, factor: (usize, usize), size: (usize, usize)) -> Vec<u8> {
    let (n, m) = (c.real_w, c.real_h);
    let at = |x: usize, y: usize| u32::from(samples[y.min(m - 1) * c.grid_w + x.min(n - 1)]);
    // The neighbour an output sample leans towards: the previous input for
    // an even output index, the next for an odd one, clamped to the edge.
    let near = |i: usize| if i.is_multiple_of(2) { (i / 2).saturating_sub(1) } else { i / 2 + 1 };
    let (w, h) = size;
    let mut out = Vec::with_capacity(w * h);
    for y in 0..h {
        for x in 0..w {
            let v = match factor {
                (1, 1) => at(x, y),
                (2, 1) => (3 * at(x / 2, y) + at(near(x), y) + 1 + (x as u32 & 1)) >> 2,
                (1, 2) => (3 * at(x, y / 2) + at(x, near(y)) + 1 + (y as u32 & 1)) >> 2,
                (2, 2) => {
                    let colsum = |i: usize| 3 * at(i, y / 2) + at(i, near(y));
                    (3 * colsum(x / 2) + colsum(near(x)) + 8 - (x as u32 & 1)) >> 4
                }
                (fx, fy) => at(x / fx, y / fy),
            };
            out.push(v as u8);
        }
    }
    out
}

/// JFIF's YCbCr → RGB in libjpeg's 16-bit fixed point (`jdcolor.c`).
fn ycc_to_rgb(y: u8, cb: u8, cr: u8) -> [u8; 3] {
    const HALF: i32 = 1 << 15;
    let fix = |x: f64| (x * 65536.0 + 0.5) as i32;
    let (y, cb, cr) = (i32::from(y), i32::from(cb) - 128, i32::from(cr) - 128);
    let r = y + ((fix(1.40200) * cr + HALF) >> 16);
    let g = y + ((-fix(0.34414) * cb - fix(0.71414) * cr + HALF) >> 16);
    let b = y + ((fix(1.77200) * cb + HALF) >> 16);
    [r.clamp(0, 255) as u8, g.clamp(0, 255) as u8, b.clamp(0, 255) as u8]
}

#[cfg(test)]
mod tests {
    use super::*;
    use jpeg_encoder::{ColorType, Encoder, SamplingFactor};

    /// jpeg-decoder's own 1/8-scale decode of `data`, as RGB.
    fn reference(data: &[u8]) -> RgbImage {
        let mut d = jpeg_decoder::Decoder::new(data);
        d.read_info().unwrap();
        let (w, h) = d.scale(1, 1).unwrap();
        let px = d.decode().unwrap();
        let rgb =
            if px.len() == usize::from(w) * usize::from(h) { px.iter().flat_map(|&v| [v, v, v]).collect() } else { px };
        RgbImage::from_raw(u32::from(w), u32::from(h), rgb).unwrap()
    }

    /// Largest and mean absolute difference over every channel.
    fn apart(a: &RgbImage, b: &RgbImage) -> (u8, f64) {
        assert_eq!(a.dimensions(), b.dimensions());
        let d: Vec<u8> = a.as_raw().iter().zip(b.as_raw()).map(|(x, y)| x.abs_diff(*y)).collect();
        (*d.iter().max().unwrap(), d.iter().map(|&v| f64::from(v)).sum::<f64>() / d.len() as f64)
    }

    /// Smooth gradients with sharp-edged patches, `w × h`.
    fn picture(w: u32, h: u32) -> Vec<u8> {
        let mut v = Vec::new();
        for y in 0..h {
            for x in 0..w {
                let patch = (w / 5..w / 2).contains(&x) && (h / 4..h / 2).contains(&y);
                v.extend_from_slice(&if patch {
                    [230, 25, 75]
                } else {
                    [(x * 255 / w) as u8, (y * 255 / h) as u8, ((x + 2 * y) * 255 / (w + 2 * h)) as u8]
                });
            }
        }
        v
    }

    fn encode(w: u16, h: u16, color: ColorType, sampling: SamplingFactor, progressive: bool, restart: u16) -> Vec<u8> {
        let rgb = picture(w.into(), h.into());
        let pixels: Vec<u8> = match color {
            ColorType::Luma => rgb.chunks(3).map(|p| p[1]).collect(),
            _ => rgb,
        };
        let mut out = Vec::new();
        let mut e = Encoder::new(&mut out, 88);
        e.set_sampling_factor(sampling);
        e.set_progressive(progressive);
        if restart > 0 {
            e.set_restart_interval(restart);
        }
        e.encode(&pixels, w, h, color).unwrap();
        out
    }

    // The two decoders differ only in rounding: jpeg-decoder's 1/8 IDCT
    // truncates `(DC·Q₀ + 1024) / 8` where libjpeg (and this decoder)
    // rounds, and its YCbCr conversion rounds a little differently. Both
    // upsample chroma with the same triangle filter. Measured over every
    // case below: at most 3 levels apart, 0.90 to 1.17 on average.
    const MAX_APART: u8 = 3;
    const MEAN_APART: f64 = 1.25;

    fn check(data: &[u8], what: &str) {
        let ours = decode_eighth(data, u64::MAX).unwrap_or_else(|| panic!("{what}: not decoded"));
        let (max, mean) = apart(&ours, &reference(data));
        assert!(max <= MAX_APART && mean <= MEAN_APART, "{what}: max {max}, mean {mean}");
    }

    #[test]
    fn every_sampling_scan_mode_and_restart_interval_agrees_with_jpeg_decoder() {
        let samplings = [
            SamplingFactor::F_1_1,
            SamplingFactor::F_2_1,
            SamplingFactor::F_1_2,
            SamplingFactor::F_2_2,
            SamplingFactor::F_4_1,
            SamplingFactor::F_2_4,
        ];
        for (w, h) in [(203u16, 117u16), (64, 64), (9, 1), (1, 300)] {
            for sampling in samplings {
                for progressive in [false, true] {
                    for restart in [0u16, 1, 7] {
                        let data = encode(w, h, ColorType::Rgb, sampling, progressive, restart);
                        check(&data, &format!("{w}x{h} {sampling:?} progressive {progressive} restart {restart}"));
                    }
                }
            }
            for progressive in [false, true] {
                let data = encode(w, h, ColorType::Luma, SamplingFactor::F_1_1, progressive, 3);
                check(&data, &format!("{w}x{h} grey progressive {progressive}"));
            }
        }
    }

    /// Made by libjpeg through Pillow (`tests/testdata/jpeg/make_fixtures.py`).
    const FIXTURES: [(&str, &[u8]); 4] = [
        ("progressive_420", include_bytes!("../../tests/testdata/jpeg/progressive_420.jpg")),
        ("progressive_420_restart", include_bytes!("../../tests/testdata/jpeg/progressive_420_restart.jpg")),
        ("progressive_444", include_bytes!("../../tests/testdata/jpeg/progressive_444.jpg")),
        ("progressive_grey", include_bytes!("../../tests/testdata/jpeg/progressive_grey.jpg")),
    ];

    #[test]
    fn libjpeg_progressive_files_with_dc_refinement_agree_with_jpeg_decoder() {
        for (name, data) in FIXTURES {
            check(data, name);
        }
    }

    #[test]
    fn a_truncated_file_is_refused_unless_only_ac_scans_are_missing() {
        for (name, data) in FIXTURES {
            let whole = decode_eighth(data, u64::MAX).unwrap();
            // Where the last DC scan's data ends: the marker after it.
            let last_dc = (0..data.len() - 1)
                .rev()
                .filter(|&i| data[i] == 0xFF && data[i + 1] == 0xDA)
                .find(|&i| data[i + 5 + 2 * usize::from(data[i + 4])] == 0)
                .unwrap();
            let dc_end = find_marker(data, last_dc + 2 + be16(data, last_dc + 2).unwrap(), true).unwrap();
            for cut in 0..data.len() {
                match decode_eighth(&data[..cut], u64::MAX) {
                    Some(img) => {
                        assert!(cut > last_dc, "{name}: cut at {cut} accepted, before the last DC scan at {last_dc}");
                        assert_eq!(img, whole, "{name}: cut at {cut}");
                    }
                    // Within the last DC scan's data, a cut that takes only
                    // its final padding bits may still decode (identically).
                    None => assert!(cut < dc_end, "{name}: cut at {cut} refused after the DC scans ended at {dc_end}"),
                }
            }
        }
    }

    #[test]
    fn forms_it_does_not_take_are_left_to_the_general_decoder() {
        let base = encode(64, 48, ColorType::Rgb, SamplingFactor::F_2_2, false, 0);
        assert!(decode_eighth(&base, u64::MAX).is_some());
        // CMYK (four components).
        let cmyk = {
            let mut out = Vec::new();
            Encoder::new(&mut out, 90).encode(&vec![40u8; 64 * 48 * 4], 64, 48, ColorType::Cmyk).unwrap();
            out
        };
        assert!(decode_eighth(&cmyk, u64::MAX).is_none());
        let sof = (0..base.len() - 1).find(|&i| base[i] == 0xFF && base[i + 1] == 0xC0).unwrap();
        let patched = |at: usize, byte: u8| {
            let mut d = base.clone();
            d[at] = byte;
            d
        };
        // 12-bit samples, arithmetic coding (SOF9), lossless (SOF3), a
        // height left to a DNL marker (0 in the frame header).
        assert!(decode_eighth(&patched(sof + 4, 12), u64::MAX).is_none());
        assert!(decode_eighth(&patched(sof + 1, 0xC9), u64::MAX).is_none());
        assert!(decode_eighth(&patched(sof + 1, 0xC3), u64::MAX).is_none());
        assert!(decode_eighth(&[&base[..sof + 5], &[0, 0], &base[sof + 7..]].concat(), u64::MAX).is_none());
        // Hierarchical: a DHP segment (a frame header's body) or an EXP
        // segment ahead of the frame.
        let sof_len = usize::from(u16::from_be_bytes([base[sof + 2], base[sof + 3]]));
        let dhp = [&[0xFF, 0xDE][..], &base[sof + 2..sof + 2 + sof_len]].concat();
        assert!(decode_eighth(&[&base[..sof], &dhp, &base[sof..]].concat(), u64::MAX).is_none());
        assert!(decode_eighth(&[&base[..sof], &[0xFF, 0xDF, 0, 3, 0x11], &base[sof..]].concat(), u64::MAX).is_none());
        // Over the pixel limit: refused before the DC grids are allocated.
        assert!(decode_eighth(&base, 64 * 48 - 1).is_none());
        assert!(decode_eighth(&base, 64 * 48).is_some());
        // Not a JPEG at all, or nothing.
        assert!(decode_eighth(b"\x89PNG\r\n\x1a\n", u64::MAX).is_none());
        assert!(decode_eighth(&[], u64::MAX).is_none());
    }

    #[test]
    fn damaged_bytes_never_panic() {
        // Every byte of a small progressive and a small sequential file set
        // to 0x00, 0xFF and flipped: the decoder returns, whatever it says.
        let files = [FIXTURES[0].1.to_vec(), encode(40, 24, ColorType::Rgb, SamplingFactor::F_2_1, false, 2)];
        for data in &files {
            for i in 0..data.len() {
                for byte in [0x00, 0xFF, !data[i]] {
                    let mut d = data.clone();
                    d[i] = byte;
                    if let Some(img) = decode_eighth(&d, u64::MAX) {
                        assert!(img.width() >= 1 && img.height() >= 1);
                    }
                }
            }
        }
    }

    #[test]
    fn huffman_counts_that_overflow_their_lengths_are_refused() {
        let mut counts = [0u8; 16];
        counts[0] = 3; // three 1-bit codes
        assert!(Huffman::new(&counts, &[1, 2, 3]).is_none());
        counts[0] = 2;
        assert!(Huffman::new(&counts, &[1, 2]).is_some());
    }
}
