//! `fake-kubectl`: see the library's documentation for what it implements.

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let code = fake_kubectl::main_with(
        args,
        &mut std::io::stdin(),
        &mut std::io::stdout(),
        &mut std::io::stderr(),
    );
    std::process::exit(code);
}
