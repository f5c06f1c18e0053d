//! Scenes (what is in a picture) and the captions that describe them.

use super::rng::SynthRng;

/// A shape kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// A filled disc.
    Circle,
    /// A filled axis-aligned square.
    Square,
    /// A filled upward triangle.
    Triangle,
}

impl Shape {
    /// All shapes.
    pub const ALL: [Shape; 3] = [Shape::Circle, Shape::Square, Shape::Triangle];
    /// English noun.
    pub fn noun(self) -> &'static str {
        match self {
            Shape::Circle => "circle",
            Shape::Square => "square",
            Shape::Triangle => "triangle",
        }
    }
}

/// A named colour.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Colour {
    /// English name.
    pub name: &'static str,
    /// sRGB value.
    pub rgb: [u8; 3],
}

/// Shape colours for colour images.
pub const SHAPE_COLOURS: [Colour; 6] = [
    Colour {
        name: "red",
        rgb: [220, 30, 30],
    },
    Colour {
        name: "green",
        rgb: [30, 170, 40],
    },
    Colour {
        name: "blue",
        rgb: [30, 60, 220],
    },
    Colour {
        name: "yellow",
        rgb: [240, 210, 20],
    },
    Colour {
        name: "purple",
        rgb: [140, 40, 170],
    },
    Colour {
        name: "orange",
        rgb: [250, 130, 10],
    },
];
/// Backgrounds for colour images.
pub const BACKGROUNDS: [Colour; 3] = [
    Colour {
        name: "white",
        rgb: [245, 245, 245],
    },
    Colour {
        name: "gray",
        rgb: [128, 128, 128],
    },
    Colour {
        name: "black",
        rgb: [15, 15, 15],
    },
];
/// Shape colours for grayscale images (named as they look).
pub const GRAY_SHAPE_COLOURS: [Colour; 2] = [
    Colour {
        name: "white",
        rgb: [240, 240, 240],
    },
    Colour {
        name: "black",
        rgb: [20, 20, 20],
    },
];

/// One object in a scene, placed in a 3x3 grid cell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Object {
    /// Kind.
    pub shape: Shape,
    /// Fill colour.
    pub colour: Colour,
    /// Grid column 0..3 (left, centre, right).
    pub col: u32,
    /// Grid row 0..3 (top, middle, bottom).
    pub row: u32,
    /// Large (fills most of its cell) or small.
    pub large: bool,
}

impl Object {
    /// "top left", "right", "center", ...
    pub fn position(&self) -> &'static str {
        const NAMES: [[&str; 3]; 3] = [
            ["top left", "top", "top right"],
            ["left", "center", "right"],
            ["bottom left", "bottom", "bottom right"],
        ];
        NAMES[self.row as usize][self.col as usize]
    }
}

/// A picture's content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scene {
    /// Background.
    pub background: Colour,
    /// Objects, in distinct cells, sorted left to right then top to bottom.
    pub objects: Vec<Object>,
}

/// Draws a scene: 1–4 objects in distinct cells. `gray` restricts colours to what a grayscale image
/// can show truthfully.
pub fn random_scene(rng: &mut SynthRng, gray: bool) -> Scene {
    let background = if gray {
        *rng.pick(&BACKGROUNDS[1..2])
    } else {
        *rng.pick(&BACKGROUNDS)
    };
    let palette: &[Colour] = if gray {
        &GRAY_SHAPE_COLOURS
    } else {
        &SHAPE_COLOURS
    };
    let n = rng.range(1, 4);
    let mut cells: Vec<u32> = (0..9).collect();
    let mut objects = Vec::new();
    for _ in 0..n {
        let cell = cells.remove(rng.range(0, cells.len() as u32 - 1) as usize);
        let colour = loop {
            let c = *rng.pick(palette);
            if c.name != background.name {
                break c;
            }
        };
        objects.push(Object {
            shape: *rng.pick(&Shape::ALL),
            colour,
            col: cell % 3,
            row: cell / 3,
            large: rng.unit() < 0.5,
        });
    }
    objects.sort_by_key(|o| (o.col, o.row));
    Scene {
        background,
        objects,
    }
}

const NUMBERS: [&str; 5] = ["zero", "one", "two", "three", "four"];

fn with_article(words: &str) -> String {
    let article = if words.starts_with(['a', 'e', 'i', 'o', 'u']) {
        "an"
    } else {
        "a"
    };
    format!("{article} {words}")
}

fn plural(noun: &str, n: usize) -> String {
    if n == 1 {
        noun.to_string()
    } else {
        format!("{noun}s")
    }
}

/// "two red circles and a blue square": objects grouped by (colour, shape) in first-seen order.
fn counted_list(scene: &Scene) -> String {
    let mut groups: Vec<(Colour, Shape, usize)> = Vec::new();
    for o in &scene.objects {
        match groups
            .iter_mut()
            .find(|(c, s, _)| *c == o.colour && *s == o.shape)
        {
            Some(g) => g.2 += 1,
            None => groups.push((o.colour, o.shape, 1)),
        }
    }
    let parts: Vec<String> = groups
        .iter()
        .map(|(c, s, n)| {
            if *n == 1 {
                with_article(&format!("{} {}", c.name, s.noun()))
            } else {
                format!("{} {} {}", NUMBERS[*n], c.name, plural(s.noun(), *n))
            }
        })
        .collect();
    join_and(&parts)
}

fn join_and(parts: &[String]) -> String {
    match parts {
        [] => String::new(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    }
}

fn describe(o: &Object, size: bool) -> String {
    let size_word = if !size {
        ""
    } else if o.large {
        "large "
    } else {
        "small "
    };
    with_article(&format!("{size_word}{} {}", o.colour.name, o.shape.noun()))
}

/// Five captions, each true of the scene, in the styles human captioners use.
pub fn captions(scene: &Scene, rng: &mut SynthRng) -> Vec<String> {
    let n = scene.objects.len();
    let bg = scene.background.name;
    let mut caps = Vec::with_capacity(5);
    // 1. counted list with background
    caps.push(format!("{} on a {bg} background", counted_list(scene)));
    // 2. positions
    let placed: Vec<String> = scene
        .objects
        .iter()
        .map(|o| format!("{} at the {}", describe(o, false), o.position()))
        .collect();
    caps.push(join_and(&placed));
    // 3. count of shapes
    caps.push(format!(
        "{} {} {}: {}",
        if n == 1 { "a single" } else { NUMBERS[n] },
        plural("shape", n),
        if n == 1 { "is shown" } else { "are shown" },
        counted_list(scene)
    ));
    // 4. relation between the leftmost and rightmost objects, or size + position for one object
    if n >= 2 && scene.objects[0].col != scene.objects[n - 1].col {
        caps.push(format!(
            "{} to the left of {}",
            describe(&scene.objects[0], true),
            describe(&scene.objects[n - 1], true)
        ));
    } else {
        let o = &scene.objects[0];
        caps.push(format!(
            "{} in the {} of the picture",
            describe(o, true),
            o.position()
        ));
    }
    // 5. a casual, capitalised, punctuated sentence (exercises the text normalisation)
    let o = rng.pick(&scene.objects);
    caps.push(format!(
        "A {} picture with {}{}.",
        bg,
        describe(o, false),
        if n > 1 {
            format!(" and {} other {}", NUMBERS[n - 1], plural("shape", n - 1))
        } else {
            String::new()
        }
    ));
    caps
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obj(shape: Shape, colour: usize, col: u32, row: u32) -> Object {
        Object {
            shape,
            colour: SHAPE_COLOURS[colour],
            col,
            row,
            large: true,
        }
    }

    #[test]
    fn captions_describe_the_scene() {
        let scene = Scene {
            background: BACKGROUNDS[0],
            objects: vec![
                obj(Shape::Circle, 0, 0, 0),
                obj(Shape::Circle, 0, 1, 1),
                obj(Shape::Square, 2, 2, 2),
            ],
        };
        let caps = captions(&scene, &mut SynthRng::new(1, 0));
        assert_eq!(
            caps[0],
            "two red circles and a blue square on a white background"
        );
        assert_eq!(
            caps[1],
            "a red circle at the top left, a red circle at the center and a blue square at the bottom right"
        );
        assert_eq!(
            caps[2],
            "three shapes are shown: two red circles and a blue square"
        );
        assert_eq!(
            caps[3],
            "a large red circle to the left of a large blue square"
        );
        assert!(
            caps[4].starts_with("A white picture with a "),
            "{}",
            caps[4]
        );
    }

    #[test]
    fn scenes_are_deterministic_and_truthful() {
        let a = random_scene(&mut SynthRng::new(7, 3), false);
        let b = random_scene(&mut SynthRng::new(7, 3), false);
        assert_eq!(a, b);
        for seed in 0..50 {
            let s = random_scene(&mut SynthRng::new(seed, 0), true);
            assert!(s.objects.iter().all(|o| o.colour.name != s.background.name));
            assert!((1..=4).contains(&s.objects.len()));
        }
    }
}
