//! `medxfer data check` reports every planted fault of a dataset tree in one run, with a count per kind.

use medxfer::data::demo;
use std::process::Command;

#[test]
fn every_planted_fault_is_named_in_one_pass() {
    let home = tempfile::tempdir().unwrap();
    let (cls, _) = demo::write(&home.path().join("d")).unwrap();
    let check = |json: bool| {
        let mut c = Command::new(env!("CARGO_BIN_EXE_medxfer"));
        c.args(["data", "check", "demo-cls", "--root"]).arg(&cls).env("MEDXFER_HOME", home.path());
        if json {
            c.arg("--json");
        }
        c.output().unwrap()
    };
    let clean = check(true);
    assert!(clean.status.success(), "{}", String::from_utf8_lossy(&clean.stderr));

    let lines = |name: &str| -> Vec<String> {
        std::fs::read_to_string(cls.join(name)).unwrap().lines().map(str::to_string).collect()
    };
    let (train, mut val) = (lines("train.txt"), lines("val.txt"));
    let image_of = |line: &String| line.split_whitespace().next().unwrap().to_string();
    // val.txt: line 2 one label short, line 4 a label that is no number, line 6's image deleted, line 8's
    // image not an image, and a last line naming a train patient's image (a patient in two splits).
    val[1] = val[1].rsplit_once(' ').unwrap().0.to_string();
    val[3] = val[3].replacen(" 0", " x", 1).replacen(" 1", " x", 1);
    std::fs::remove_file(cls.join("images").join(image_of(&val[5]))).unwrap();
    std::fs::write(cls.join("images").join(image_of(&val[7])), b"not a png").unwrap();
    val.push(train[0].clone());
    std::fs::write(cls.join("val.txt"), val.join("\n") + "\n").unwrap();
    // test.txt: a short line too, so two lists are broken at once.
    let mut test = lines("test.txt");
    test[2] = image_of(&test[2]);
    std::fs::write(cls.join("test.txt"), test.join("\n") + "\n").unwrap();

    let out = check(true);
    assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stderr));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let counts = &report["counts"];
    assert_eq!(counts["malformed_line"], 3, "{report}");
    assert_eq!(counts["missing_image"], 1, "{report}");
    assert_eq!(counts["unreadable_image"], 1, "{report}");
    assert_eq!(counts["shared_patient"], 1, "{report}");
    let errors: Vec<&str> = report["errors"].as_array().unwrap().iter().map(|e| e.as_str().unwrap()).collect();
    assert_eq!(errors.len(), 6, "{errors:#?}");
    let val_list = cls.join("val.txt").display().to_string();
    let test_list = cls.join("test.txt").display().to_string();
    for (needle, what) in [
        (format!("{val_list}:2: expected 4 labels"), "the short label line"),
        (format!("{val_list}:4: label `x` is not a number"), "the bad label"),
        (format!("{test_list}:3: expected 4 labels after the image name, found 0"), "the bare image name"),
        (format!("{} is missing (listed at {val_list}:6)", image_of(&val[5])), "the missing image"),
        (format!("{} is not a readable image", image_of(&val[7])), "the broken image"),
    ] {
        assert!(errors.iter().any(|e| e.contains(&needle)), "{what} ({needle}) not in {errors:#?}");
    }
    let patient = image_of(&train[0]).split('_').next().unwrap().to_string();
    let shared = errors.iter().find(|e| e.contains("appears in the")).unwrap();
    assert!(shared.contains(&format!("patient {patient} appears in the train and val splits")), "{shared}");
    assert!(shared.contains(&format!("{val_list}:{}", val.len())), "{shared}");
    // The good lines of the broken lists still count, and the summary names each kind.
    assert_eq!(report["splits"][1]["items"], 100 - 2 + 1, "{report}");
    let text = check(false);
    let stderr = String::from_utf8_lossy(&text.stderr);
    assert!(
        stderr.contains("6 problem(s) found (3 malformed_line, 1 missing_image, 1 unreadable_image, 1 shared_patient)"),
        "{stderr}"
    );
}
