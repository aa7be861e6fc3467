//! A small subsequence fuzzy matcher for the command palette and completions.
//!
//! Every pattern character must appear in the candidate in order (case-insensitive). Among the
//! possible alignments (one per occurrence of the first character, the rest greedy) the best
//! score wins: matches at word starts and runs of consecutive matches score high, gaps cost a
//! little, and a shorter candidate wins a tie.

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FuzzyMatch {
    pub score: i32,
    /// Character indices of the matched characters in the candidate.
    pub positions: Vec<usize>,
}

fn is_boundary(prev: Option<char>, cur: char) -> bool {
    prev.is_none_or(|p| {
        matches!(p, ' ' | '-' | '_' | '.' | '/' | ':' | ',')
            || (p.is_lowercase() && cur.is_uppercase())
    })
}

/// Score `candidate` against `pattern`; `None` when it does not match.
pub fn fuzzy_match(pattern: &str, candidate: &str) -> Option<FuzzyMatch> {
    let pat: Vec<char> = pattern
        .chars()
        .flat_map(char::to_lowercase)
        .filter(|c| !c.is_whitespace())
        .collect();
    let orig: Vec<char> = candidate.chars().collect();
    let cand: Vec<char> = orig
        .iter()
        .map(|c| c.to_lowercase().next().unwrap_or(*c))
        .collect();
    let (m, n) = (pat.len(), cand.len());
    if m == 0 {
        return Some(FuzzyMatch {
            score: 0,
            positions: Vec::new(),
        });
    }
    if m > n {
        return None;
    }
    const NONE: i32 = i32::MIN / 2;
    let char_score = |j: usize| -> i32 {
        let before = if j == 0 { None } else { Some(orig[j - 1]) };
        16 + if is_boundary(before, orig[j]) { 10 } else { 0 }
    };
    // dp[i][j]: best score of pat[..=i] with pat[i] matched at cand[j]; back[i][j]: where
    // pat[i-1] was matched.
    let mut dp = vec![vec![NONE; n]; m];
    let mut back = vec![vec![0usize; n]; m];
    for j in 0..n {
        if cand[j] == pat[0] {
            dp[0][j] = char_score(j) + if j == 0 { 10 } else { -(j.min(5) as i32) };
        }
    }
    for i in 1..m {
        for j in i..n {
            if cand[j] != pat[i] {
                continue;
            }
            for k in (i - 1)..j {
                if dp[i - 1][k] == NONE {
                    continue;
                }
                let link = if k + 1 == j {
                    15
                } else {
                    -((j - k - 1).min(10) as i32)
                };
                let s = dp[i - 1][k] + char_score(j) + link;
                if s > dp[i][j] {
                    dp[i][j] = s;
                    back[i][j] = k;
                }
            }
        }
    }
    // The best end, the first of equals (max_by_key keeps the last it sees).
    let ends = dp[m - 1].iter().copied().enumerate().rev();
    let (mut j, mut score) = ends.max_by_key(|&(_, s)| s)?;
    if score == NONE {
        return None;
    }
    let mut positions = vec![0; m];
    for i in (0..m).rev() {
        positions[i] = j;
        if i > 0 {
            j = back[i][j];
        }
    }
    if m == n {
        score += 50;
    }
    // Tie-breaker: shorter candidates first.
    score -= ((n - m).min(20) / 4) as i32;
    Some(FuzzyMatch { score, positions })
}

/// Rank `items` by `key` against `pattern`; stable for equal scores. Returns (index, match).
pub fn rank<T>(pattern: &str, items: &[T], key: impl Fn(&T) -> &str) -> Vec<(usize, FuzzyMatch)> {
    let mut out: Vec<(usize, FuzzyMatch)> = items
        .iter()
        .enumerate()
        .filter_map(|(i, it)| fuzzy_match(pattern, key(it)).map(|m| (i, m)))
        .collect();
    out.sort_by(|a, b| b.1.score.cmp(&a.1.score).then(a.0.cmp(&b.0)));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(pattern: &str, items: &[&str]) -> Vec<String> {
        rank(pattern, items, |s| s)
            .into_iter()
            .map(|(i, _)| items[i].to_string())
            .collect()
    }

    #[test]
    fn subsequence_only() {
        assert!(fuzzy_match("inj", "inject").is_some());
        assert!(fuzzy_match("ijt", "inject").is_some());
        assert!(fuzzy_match("tji", "inject").is_none());
        assert!(fuzzy_match("x", "inject").is_none());
        assert!(fuzzy_match("INJ", "inject").is_some(), "case-insensitive");
        assert_eq!(fuzzy_match("", "anything").unwrap().score, 0);
    }

    #[test]
    fn positions_are_reported() {
        assert_eq!(
            fuzzy_match("mc", "multicast").unwrap().positions,
            vec![0, 5]
        );
        // The best alignment wins: "cast" matches the contiguous run, not the first 'c'.
        assert_eq!(
            fuzzy_match("cast", "broadcast").unwrap().positions,
            vec![5, 6, 7, 8]
        );
    }

    #[test]
    fn ranking_prefers_prefix_boundaries_and_runs() {
        let cmds = [
            "broadcast",
            "multicast",
            "inject",
            "kill",
            "keys",
            "layout",
            "theme",
            "attach",
        ];
        assert_eq!(names("inj", &cmds)[0], "inject");
        assert_eq!(names("bc", &cmds)[0], "broadcast");
        assert_eq!(names("mul", &cmds)[0], "multicast");
        assert_eq!(names("at", &cmds)[0], "attach");
        assert_eq!(names("ca", &cmds), vec!["broadcast", "multicast"]);
        // Word starts beat mid-word matches.
        assert_eq!(names("tl", &["tall-layout", "title"])[0], "tall-layout");
        // Exact beats longer prefix.
        assert_eq!(names("kill", &["kill-all", "kill"])[0], "kill");
    }

    #[test]
    fn ties_are_stable() {
        assert_eq!(names("", &["b", "a", "c"]), vec!["b", "a", "c"]);
    }
}
