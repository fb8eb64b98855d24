//! Writes `docs/notifications.md` and `docs/notifications/<provider>.svg`:
//! the example message rendered for each provider, and drawn as its chat
//! client shows it.
//!
//! `cargo run -p gantry-core --example notification-pictures`

use std::path::Path;

use gantry_core::notify::{Provider, picture};

fn main() -> std::io::Result<()> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/notifications");
    std::fs::create_dir_all(&dir)?;
    let message = picture::example();
    for provider in Provider::ALL {
        let svg = dir.join(format!("{provider}.svg"));
        std::fs::write(&svg, picture::svg(provider, &message))?;
        println!("wrote {}", svg.display());
    }
    std::fs::write(dir.join("../notifications.md"), picture::markdown())?;
    println!("wrote docs/notifications.md");
    Ok(())
}
