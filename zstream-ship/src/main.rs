fn main() {
    zstream_common::cli::main(zstream_ship::app::NAME, zstream_ship::app::run)
}
