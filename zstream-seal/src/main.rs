fn main() {
    zstream_common::cli::main(zstream_seal::app::NAME, zstream_seal::app::run)
}
