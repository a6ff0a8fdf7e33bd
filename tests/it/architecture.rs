//! The module rules of DESIGN.md, checked over `cargo metadata` and the sources:
//! a module depends on another module's `api` only — never on its `local`
//! implementation — and imports nothing else of it.

use std::process::Command;

const MODULES: &[&str] = &[
    "gateway",
    "admin",
    "auth",
    "user",
    "notification",
    "listing",
    "booking",
    "payment",
    "message",
    "review",
    "analytics",
    "search",
    "realtime",
];

#[test]
fn modules_depend_on_each_other_through_api_only() {
    let root = env!("CARGO_MANIFEST_DIR");
    let out = Command::new(env!("CARGO"))
        .args(["metadata", "--format-version", "1", "--no-deps", "--offline"])
        .current_dir(root)
        .output()
        .expect("cargo metadata");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let meta: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let mut checked = 0;
    for package in meta["packages"].as_array().unwrap() {
        let name = package["name"].as_str().unwrap();
        let Some(module) = name.strip_prefix("hometrip-") else {
            continue;
        };
        if module == "kernel" {
            let deps = package["dependencies"].as_array().unwrap();
            assert!(
                deps.iter().all(|d| !d["name"].as_str().unwrap().starts_with("hometrip-")),
                "the kernel knows no module"
            );
            continue;
        }
        for dep in package["dependencies"].as_array().unwrap() {
            let dep_name = dep["name"].as_str().unwrap();
            let Some(other) = dep_name.strip_prefix("hometrip-") else {
                continue;
            };
            if other == "kernel" || !MODULES.contains(&other) || dep["kind"].as_str() == Some("dev") {
                continue;
            }
            assert_eq!(
                dep["uses_default_features"],
                serde_json::json!(false),
                "{name} pulls {dep_name}'s implementation (default features)"
            );
            let features: Vec<&str> = dep["features"].as_array().unwrap().iter().filter_map(|f| f.as_str()).collect();
            assert!(!features.contains(&"local"), "{name} enables {dep_name}/local");
            checked += 1;
        }
    }
    assert!(checked >= 3, "expected cross-module dependencies to check, found {checked}");
}

#[test]
fn module_sources_import_only_other_modules_api() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("modules");
    let mut violations = Vec::new();
    for module in std::fs::read_dir(&root).unwrap().flatten() {
        let own = module.file_name().to_string_lossy().into_owned();
        let src = module.path().join("src");
        for file in std::fs::read_dir(&src).into_iter().flatten().flatten() {
            let text = std::fs::read_to_string(file.path()).unwrap_or_default();
            for other in MODULES.iter().filter(|m| **m != own) {
                let needle = format!("hometrip_{other}::");
                for (i, _) in text.match_indices(&needle) {
                    let rest = &text[i + needle.len()..];
                    if !rest.starts_with("api") {
                        violations.push(format!(
                            "{}: uses {needle}{}",
                            file.path().display(),
                            &rest[..rest.len().min(20)]
                        ));
                    }
                }
            }
        }
    }
    assert!(violations.is_empty(), "{violations:#?}");
}

/// The crates in the normal dependency tree of the binary built with `features`.
fn crates_with(features: &str) -> std::collections::BTreeSet<String> {
    let mut args = vec!["tree", "--offline", "-p", "hometrip", "-e", "normal", "--prefix", "none", "--format", "{p}"];
    if !features.is_empty() {
        args.extend(["--no-default-features", "--features", features]);
    }
    let out =
        Command::new(env!("CARGO")).args(&args).current_dir(env!("CARGO_MANIFEST_DIR")).output().expect("cargo tree");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_owned)
        .collect()
}

#[test]
fn a_module_s_own_dependencies_come_only_with_that_module() {
    // Each heavy dependency and the module that alone needs it.
    let own = [
        ("tantivy", "search"),
        ("async-stripe", "payment"),
        ("lettre", "notification"),
        ("image", "listing"),
        ("zxcvbn", "auth"),
    ];
    let all = crates_with("");
    for (krate, _) in own {
        assert!(all.contains(krate), "the full build has {krate}");
    }
    for features in ["gateway,auth", "gateway", "booking", "search"] {
        let have = crates_with(features);
        for (krate, module) in own {
            // Images come with user as well as listing.
            let wanted = features.split(',').any(|f| f == module || (krate == "image" && f == "user"));
            assert_eq!(have.contains(krate), wanted, "--features {features}: {krate}");
        }
    }
}
