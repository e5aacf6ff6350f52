fn main() {
    zstream_common::cli::main(ec2_pool::app::NAME, ec2_pool::app::run)
}
