fn main() {
    zstream_common::cli::main(zstream_par::app::NAME, zstream_par::app::run)
}
