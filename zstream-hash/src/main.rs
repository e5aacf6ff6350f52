fn main() {
    zstream_common::cli::main("zstream-hash", zstream_hash::app::run)
}
