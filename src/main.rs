//! `medxfer`: every command that needs no tensor, without loading libtorch; the others exec medxfer-torch.
fn main() {
    std::process::exit(medxfer::cli::main());
}
