//! A model of a job's wall time on a cluster of identical nodes, fed with times measured on
//! one node (`benches/cluster.rs`): how far more nodes take a job, and what stays serial.
//!
//! It follows what Slurm does with a job array whose tasks each hold a whole node: the tasks
//! start in index order, each on the first node to fall free, after the scheduler's dispatch
//! delay; the package task starts once the last one has ended (the `afterok` dependency), and
//! package and verify run on one node. Validation and submission run before any of it, on
//! the submitting machine.

/// Measured times of one job, in seconds.
#[derive(Debug, Clone, PartialEq)]
pub struct JobTimes {
    /// Validate, plan and submit, on the submitting machine.
    pub submit: f64,
    /// From a node being free (or the array being submitted) until a task runs on it.
    pub dispatch: f64,
    /// What each chunk's task takes on one node, in plan order.
    pub chunks: Vec<f64>,
    /// From the end of the last chunk task until the package task runs.
    pub dependency: f64,
    pub package: f64,
    pub verify: f64,
}

/// A job's wall time on a number of nodes, by phase.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Makespan {
    pub nodes: usize,
    /// Validate, plan, submit.
    pub submit: f64,
    /// From submission until the last chunk task ends.
    pub chunks: f64,
    /// Dependency delay, package and verify.
    pub after: f64,
}

impl Makespan {
    pub fn total(&self) -> f64 {
        self.submit + self.chunks + self.after
    }

    /// The part of the total that more nodes cannot shorten.
    pub fn serial(&self) -> f64 {
        self.submit + self.after
    }
}

impl JobTimes {
    /// Node time of all chunk tasks together.
    pub fn chunk_work(&self) -> f64 {
        self.chunks.iter().sum()
    }

    /// The job's wall time on `nodes` nodes (at least one).
    pub fn makespan(&self, nodes: usize) -> Makespan {
        let mut free_at = vec![0.0_f64; nodes.max(1)];
        let mut last_end = 0.0_f64;
        for &chunk in &self.chunks {
            // The node that falls free first takes the next task in index order.
            let (node, &free) = free_at
                .iter()
                .enumerate()
                .min_by(|a, b| a.1.total_cmp(b.1))
                .unwrap_or((0, &0.0));
            let end = free + self.dispatch + chunk;
            free_at[node] = end;
            last_end = last_end.max(end);
        }
        Makespan {
            nodes: nodes.max(1),
            submit: self.submit,
            chunks: last_end,
            after: self.dependency + self.package + self.verify,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn times(chunks: Vec<f64>) -> JobTimes {
        JobTimes {
            submit: 5.0,
            dispatch: 1.0,
            chunks,
            dependency: 2.0,
            package: 3.0,
            verify: 4.0,
        }
    }

    #[test]
    fn one_node_runs_every_chunk_after_the_other() {
        let m = times(vec![10.0, 20.0, 30.0]).makespan(1);
        assert_eq!(m.chunks, 3.0 + 60.0);
        assert_eq!(m.serial(), 5.0 + 9.0);
        assert_eq!(m.total(), 5.0 + 63.0 + 9.0);
    }

    #[test]
    fn with_a_node_per_chunk_the_longest_chunk_decides() {
        let t = times(vec![10.0, 25.0, 30.0]);
        assert_eq!(t.makespan(3).chunks, 31.0);
        assert_eq!(t.makespan(64).chunks, 31.0);
        assert_eq!(t.makespan(0).nodes, 1);
    }

    #[test]
    fn tasks_start_in_index_order_on_the_first_free_node() {
        // Node A takes the 30 s chunk; node B the three 10 s ones, one after the other.
        let mut t = times(vec![30.0, 10.0, 10.0, 10.0, 5.0]);
        t.dispatch = 0.0;
        // B is free at 30 like A: the 5 s chunk ends at 35.
        assert_eq!(t.makespan(2).chunks, 35.0);
        // A list in the other order leaves the 30 s chunk last: 10+10+... → 45.
        t.chunks.reverse();
        assert_eq!(t.makespan(2).chunks, 45.0);
    }

    #[test]
    fn more_nodes_do_not_slow_this_job() {
        let t = times((0..100).map(|i| 50.0 + f64::from(i % 7) * 3.0).collect());
        let mut previous = f64::INFINITY;
        for nodes in 1..=128 {
            let total = t.makespan(nodes).total();
            assert!(
                total <= previous + 1e-9,
                "{nodes} nodes: {total} > {previous}"
            );
            previous = total;
        }
        assert!(t.makespan(128).total() >= t.makespan(128).serial());
    }
}
