"""Shared by the whole suite: which tests are slow.

``pytest -m "not slow"`` is the quick subset. Tests mark themselves with ``@pytest.mark.slow`` where their author
knows; this central list adds the rest, keyed on module paths, test functions (all their parameter sets) or node
ids, so that no test file has to change. It was made from one ``pytest --durations`` run of the whole suite
(torch 2.13 CPU, one thread, a busy 2-core machine, 2026-12-04: 844 tests, 40 min): every test function whose mean
time per test was about 1 s or more, and every module whose shared fixtures take 2 s or more to set up, is slow.
What is left ran 480 tests in 68 s of test time there. Times per entry below are from that run.
"""

from __future__ import annotations

import pytest

SLOW = (  # paths relative to tests/; the comments: that run's time (and test count)
    "analysis/test_analysis_counts.py::test_renewal_counts_variance_is_cv2_nu_t_for_long_windows",  # 4 s
    "kernels/test_kernel_lif.py::test_lif_blocks_identical",  # 8 s / 8
    "kernels/test_kernel_network.py::test_network_runs_identical",  # 12 s / 2
    "kernels/test_kernel_triton.py::test_import_does_not_load_triton_or_numba",  # 16 s
    "kernels/test_kernel_triton.py::test_run_summary_reports_the_backend",  # 2 s
    "kernels/test_kernel_triton.py::test_triton_kernels_match_the_reference_under_the_interpreter",  # 139 s
    "meanfield/test_mf_degrees.py::test_star_in_degree_mean_by_monte_carlo",  # 2 s / 2
    "meanfield/test_mf_distributions.py",  # 8 s / 5
    "meanfield/test_mf_model.py",  # 59 s / 10
    "meanfield/test_mf_pipeline.py",  # 63 s / 2
    "meanfield/test_mf_solver.py::test_continuation_reaches_the_direct_solution",  # 1 s
    "meanfield/test_mf_solver.py::test_plastic_network_with_a_saddle_gets_its_low_rate_state",  # 3 s
    "meanfield/test_transfer.py::test_functorch_transforms_agree_with_backward",  # 4 s / 2
    "meanfield/test_transfer.py::test_reference_agrees_with_mpmath",  # 1 s
    "meanfield/test_transfer_functions.py::test_markov_chain_is_exact_for_a_deterministic_drift_limit",  # 53 s
    "meanfield/test_transfer_functions.py::test_transfer_functions_against_single_neuron_simulation",  # 19 s / 6
    "plasticity/test_plasticity_contract.py::test_poisson_neurons_settle_at_the_steady_state",  # 229 s / 8
    "plasticity/test_plasticity_rules.py::test_per_row_and_per_edge_layouts_give_identical_weights",  # 3 s / 2
    "reliability/test_reliability_checkpoint.py::test_a_checkpoint_is_refused_by_a_different_network",  # 1 s
    "reliability/test_reliability_checkpoint.py::test_sigkill_then_resume_gives_the_uninterrupted_results",  # 150 s
    "reliability/test_reliability_checkpoint.py::test_sigterm_leaves_a_valid_checkpoint_and_a_partial_summary",  # 52 s
    "reliability/test_reliability_checkpoint.py::test_stop_and_resume_is_bit_identical_on_the_cpu",  # 13 s
    "reliability/test_reliability_health.py::test_a_healthy_network_is_not_stopped",  # 2 s
    "reliability/test_reliability_health.py::test_a_planted_nan_is_found",  # 3 s / 2
    "reliability/test_reliability_health.py::test_weights_outside_their_bounds_are_found",  # 1 s
    "reliability/test_reliability_safety.py",  # 224 s / 25
    "run/test_run_bad_inputs.py::test_a_bad_input_is_exit_2_with_its_field_and_no_traceback",  # 151 s / 158
    "run/test_run_bad_inputs.py::test_the_command_line_maps_hydra_errors_to_exit_2",  # 8 s / 3
    "run/test_run_config_errors.py::test_a_valid_tiny_config_builds",  # 1 s
    "run/test_run_config_errors.py::test_parameter_errors_name_the_config_path_and_come_before_wiring",  # 13 s / 10
    "run/test_run_config_errors.py::test_rule_errors_come_before_any_block_is_wired",  # 4 s / 3
    "run/test_run_config_errors.py::test_rule_errors_name_the_config_path",  # 3 s / 2
    "run/test_run_config_errors.py::test_validation_errors_come_before_anything_is_built",  # 26 s / 17
    "run/test_run_entry_point.py",  # 148 s / 10
    "run/test_run_experiments.py::test_a_sweep_of_eight_jobs_through_joblib_is_collected",  # 59 s
    "run/test_run_experiments.py::test_experiment_runs_at_a_tiny_size",  # 625 s / 10
    "run/test_run_experiments.py::test_the_submitit_launcher_runs_a_sweep_with_its_local_executor",  # 33 s
    "run/test_run_failed_folders.py::test_a_failed_job_does_not_stop_the_sweep",  # 70 s
    "run/test_run_failed_folders.py::test_refused_run_leaves_no_tensorboard_and_is_listed_as_skipped",  # 15 s
    "run/test_run_file_and_nwb.py::test_export_nwb_and_file_scaffold_in_compare_mode",  # 52 s
    "run/test_run_memory.py::test_estimate_matches_the_measured_peak_rss_within_20_percent",  # 20 s
    "run/test_run_memory.py::test_wiring_peak_follows_the_device_wiring_layout",  # 1 s
    "run/test_run_outputs_read.py",  # 25 s / 2
    "run/test_run_schema.py::test_every_group_file_composes_with_its_schema",  # 6 s
    "run/test_run_schema.py::test_the_cli_names_the_key_and_the_value",  # 1 s
    "scaffold/test_scaffold_copula.py::test_realised_r_of_configuration_model",  # 3 s / 3
    "scaffold/test_scaffold_device.py::test_shuffle_is_uniform_over_permutations",  # 4 s
    "scaffold/test_scaffold_from_file.py::test_round_trip_same_spikes",  # 2 s
    "scaffold/test_scaffold_rules.py::test_full_size_wiring",  # 4 s
    "simulator/test_sim_brunel.py::test_brunel_model_a_rate_and_irregularity",  # 15 s
    "simulator/test_sim_delivery.py::test_block_length_does_not_change_the_spikes",  # 3 s
    "simulator/test_sim_delivery.py::test_network_equals_dense_step_by_step_reference",  # 29 s / 18
    "simulator/test_sim_lif.py::test_deterministic_rate_above_threshold",  # 10 s / 10
    "simulator/test_sim_monitors.py::test_spike_stats_equal_a_direct_computation_from_the_full_raster",  # 1 s
    "simulator/test_sim_monitors.py::test_synchrony_scales_as_one_over_sqrt_n_for_independent_neurons",  # 2 s / 2
    "simulator/test_sim_noise.py::test_isolated_isi_cv_matches_theory",  # 9 s / 4
    "simulator/test_sim_noise.py::test_isolated_rate_matches_siegert_with_discrete_threshold_correction",  # 7 s / 4
    "simulator/test_sim_noise.py::test_smaller_time_step_approaches_siegert",  # 26 s / 4
    "simulator/test_sim_reproducibility.py::test_different_seeds_differ",  # 2 s
    "simulator/test_sim_reproducibility.py::test_dynamics_noise_does_not_depend_on_the_scaffold_draw",  # 1 s
    "simulator/test_sim_reproducibility.py::test_replicas_of_a_network_are_independent_and_alike",  # 2 s
    "simulator/test_sim_reproducibility.py::test_replicas_of_isolated_neurons_are_independent",  # 2 s
    "simulator/test_sim_reproducibility.py::test_same_seed_same_scaffold_and_spikes",  # 1 s
)


def _is_slow(nodeid: str) -> bool:
    """``nodeid`` (relative to the repository root) is, or lies in, an entry of SLOW (relative to tests/)."""
    path = nodeid.removeprefix("tests/")
    return any(path == key or path.startswith((key + "::", key + "[")) for key in SLOW)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark every test the list names as ``slow``."""
    for item in items:
        if _is_slow(item.nodeid):
            item.add_marker(pytest.mark.slow)
