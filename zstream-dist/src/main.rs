fn main() {
    zstream_common::cli::main("zstream-dist", zstream_dist::run)
}
