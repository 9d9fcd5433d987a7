using BenchmarkDotNet.Running;

// Pick benchmarks with --filter; see docs/benchmarks.md for the jobs and the recorded results.
BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args);
