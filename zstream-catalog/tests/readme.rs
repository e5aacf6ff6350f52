//! The README's table of what each class keeps and costs at the shipped settings is what `zstream-catalog
//! recommend` computes (a promise in the README is one a test holds); and one of its rows, worked out by hand from
//! the price list.

use zstream_catalog::cost::{recommend, RecommendArgs};

fn rows(class: &str) -> Vec<zstream_catalog::cost::Option_> {
    recommend(&RecommendArgs {
        retention: 30 * 86_400,
        size: 100 << 30,
        daily: 1 << 30,
        storage_class: class.into(),
    })
    .unwrap()
}

#[test]
fn the_readme_table_is_what_recommend_says() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md")).unwrap();
    let table: Vec<&str> = readme
        .split("| class | cycles stored (average) |")
        .nth(1)
        .expect("the README's retention table")
        .lines()
        .skip(2)
        .take_while(|l| l.starts_with('|'))
        .collect();
    assert_eq!(table.len(), 5, "{table:?}");
    for line in table {
        let cells: Vec<&str> = line
            .split('|')
            .map(str::trim)
            .filter(|c| !c.is_empty())
            .collect();
        let r = rows(cells[0]);
        let shipped = r.iter().find(|o| o.full_every_days == 30).unwrap();
        let best = r.iter().find(|o| o.cheapest).unwrap();
        assert_eq!(
            cells[1],
            format!("{}", shipped.cycles_stored.round()),
            "{line}"
        );
        assert_eq!(
            cells[2],
            format!("{} GiB", shipped.stored_gib.round()),
            "{line}"
        );
        assert_eq!(cells[3], format!("${:.2}", shipped.monthly), "{line}");
        assert!(
            cells[4].ends_with(&format!("(${:.2})", best.monthly)),
            "{line}: cheapest {best:?}"
        );
    }
}

#[test]
fn standard_at_the_shipped_settings_by_hand() {
    // Monthly fulls, keep 2, STANDARD: a cycle is kept 2 x 30 days, so 2 cycles on average, each a 100 GiB full
    // and 29 incrementals of 1 GiB: 258 GiB at $0.023 = $5.934 a month. PUTs: a night's object averages
    // 100/30 + 1 GiB = 4.33 GiB, 278 parts of 16 MiB plus the upload's start and end, 30.4 nights a month:
    // 8,512 requests at $0.005 per 1,000 = $0.04256. $5.97656: $5.98.
    let r = rows("STANDARD");
    let o = r.iter().find(|o| o.full_every_days == 30).unwrap();
    assert_eq!(o.keep_cycles, 2);
    assert_eq!(o.stored_gib, 258.0);
    assert_eq!(format!("{:.2}", o.monthly), "5.98");
}
