fn main() {
    std::process::exit(medxfer::cli::main());
}
