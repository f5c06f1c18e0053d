//! Which frames of a clip to keep.
//!
//! - `uniform`: the reference's rule (`np.arange(0, vlen, vlen/N, dtype=int)` in
//!   `dataset/video_dataset.py`): numpy uses the integer step ⌊vlen/N⌋, so index i = i·⌊vlen/N⌋. The
//!   frames bunch at the start of the clip, and a clip shorter than N frames gives N copies of frame 0
//!   (reference §3.8; kept on purpose for parity).
//! - `evenly`: the centre of each of N equal segments, ⌊(2i+1)·vlen / 2N⌋, spread over the whole clip;
//!   a clip shorter than N repeats its frames in order.
//! - `fps`: one frame every 1/fps seconds from the first frame (the frame on screen at that time), at
//!   most N frames, fewer when the clip ends first.
//!
//! Every mode returns exactly N indices for uniform/evenly, so rows have a fixed frame count; clips
//! with fewer than the pipeline's `min_frames` decodable frames are rejected before sampling.

use serde::{Deserialize, Serialize};

/// A frame-sampling rule.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "mode", rename_all = "snake_case", deny_unknown_fields)]
pub enum FrameSampling {
    /// i·⌊vlen/N⌋, the reference's rule.
    Uniform,
    /// Segment centres ⌊(2i+1)·vlen / 2N⌋.
    Evenly,
    /// One frame every 1/`fps` seconds, at most N.
    Fps {
        /// Frames per second to keep.
        fps: f64,
    },
}

/// Frame indices (presentation order) for a clip of `times_s.len()` frames shown at `times_s`
/// (seconds from the first frame, ascending).
pub fn sample_indices(mode: FrameSampling, num_frames: usize, times_s: &[f64]) -> Vec<usize> {
    let vlen = times_s.len();
    if vlen == 0 || num_frames == 0 {
        return Vec::new();
    }
    match mode {
        FrameSampling::Uniform => {
            let step = vlen / num_frames;
            (0..num_frames).map(|i| i * step).collect()
        }
        FrameSampling::Evenly => (0..num_frames)
            .map(|i| ((2 * i + 1) * vlen) / (2 * num_frames))
            .collect(),
        FrameSampling::Fps { fps } => {
            let mut out = Vec::new();
            let last = times_s[vlen - 1];
            for k in 0..num_frames {
                let t = k as f64 / fps;
                if t > last + 1e-9 {
                    break;
                }
                // the frame on screen at t: the last one that started at or before t
                let idx = times_s
                    .partition_point(|&x| x <= t + 1e-9)
                    .saturating_sub(1);
                out.push(idx);
            }
            out
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn times(n: usize, fps: f64) -> Vec<f64> {
        (0..n).map(|i| i as f64 / fps).collect()
    }

    /// numpy: np.arange(0, 100, 100/12, dtype=int) = [0, 8, 16, …, 88] (step ⌊8.33⌋ = 8).
    #[test]
    fn uniform_is_the_reference_integer_step() {
        let got = sample_indices(FrameSampling::Uniform, 12, &times(100, 25.0));
        assert_eq!(got, (0..12).map(|i| i * 8).collect::<Vec<_>>());
        // shorter than N: all zeros, as numpy gives for vlen < N
        assert_eq!(
            sample_indices(FrameSampling::Uniform, 8, &times(5, 25.0)),
            vec![0; 8]
        );
        assert_eq!(
            sample_indices(FrameSampling::Uniform, 4, &times(1, 25.0)),
            vec![0; 4]
        );
    }

    #[test]
    fn evenly_takes_segment_centres() {
        // vlen 100, N 4: segments of 25, centres 12.5 → 12, 37, 62, 87
        assert_eq!(
            sample_indices(FrameSampling::Evenly, 4, &times(100, 25.0)),
            vec![12, 37, 62, 87]
        );
        assert_eq!(
            sample_indices(FrameSampling::Evenly, 4, &times(2, 25.0)),
            vec![0, 0, 1, 1]
        );
    }

    #[test]
    fn fps_picks_the_frame_on_screen() {
        // 10 fps clip of 25 frames (2.4 s); 4 fps → t = 0, .25, .5, .75, … → frames 0, 2, 5, 7, …
        let got = sample_indices(FrameSampling::Fps { fps: 4.0 }, 20, &times(25, 10.0));
        assert_eq!(got, vec![0, 2, 5, 7, 10, 12, 15, 17, 20, 22]);
        // variable frame rate: frames at 0, 0.1, 0.5, 0.55, 1.0
        let vfr = [0.0, 0.1, 0.5, 0.55, 1.0];
        assert_eq!(
            sample_indices(FrameSampling::Fps { fps: 2.0 }, 5, &vfr),
            vec![0, 2, 4]
        );
    }
}
