fn main() {
    zstream_common::cli::main(zstream_catalog::app::NAME, zstream_catalog::app::run)
}
