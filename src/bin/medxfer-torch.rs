//! `medxfer-torch`: the commands that need libtorch (train, model, bench, doctor's probe). The front binary
//! `medxfer` execs it for them; see src/torch_bin.rs.
fn main() {
    std::process::exit(medxfer::cli::main_torch());
}
