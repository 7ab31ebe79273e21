//! Any bytes given to the checkpoint readers end in a value or an error, never a panic, a hang or an
//! unbounded allocation: torch zip/legacy files through every recipe's selection and f32 view, the
//! inspect report, and the BYOL pickle path.
#![no_main]

use libfuzzer_sys::fuzz_target;
use medxfer::ckpt::{self, recipe};

fuzz_target!(|data: &[u8]| {
    let _ = ckpt::byol::convert(data);
    let Ok(checkpoint) = ckpt::load(data) else { return };
    let _ = ckpt::inspect::report("fuzz", &checkpoint);
    let _ = recipe::guess(&checkpoint.value);
    for id in ckpt::RECIPES {
        let Ok(r) = recipe::find(id) else { continue };
        let Ok(selected) = recipe::select(r, &checkpoint.value) else { continue };
        for (_, t) in &selected.tensors {
            let _ = checkpoint.tensor_f32(t);
        }
    }
});
