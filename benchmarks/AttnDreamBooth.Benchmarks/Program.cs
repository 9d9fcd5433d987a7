using AttnDreamBooth.Benchmarks.Training;
using BenchmarkDotNet.Running;

// Pick benchmarks with --filter; see docs/benchmarks.md for the jobs and the recorded results. The first argument
// "eight-bit-effect" runs the (untimed) training-effect comparison of 8-bit optimizer states instead, "memory-table"
// the training memory table (a fresh process per row), "unet-profile" times the real-size U-Net's forward and backward
// per module and op kind, "unet-ab" compares alternatives (channels-last, in-place ops) step by step in one process,
// "stage-ratios" times the stages' steps side by side against the multi-op AdamW step and the forward against a matmul,
// and "random-model" writes a real-size model folder with random weights (to measure whole CLI runs).
// libtorch reads its huge-page switch at its first allocation: let the library set it before any tensor exists.
System.Runtime.CompilerServices.RuntimeHelpers.RunModuleConstructor(typeof(AttnDreamBooth.AttnDreamBoothException).Module.ModuleHandle);
if (args.Length > 0 && args[0] == EightBitTrainingEffect.Command) return await EightBitTrainingEffect.RunAsync(args[1..]);
if (args.Length > 0 && args[0] == MemoryTable.Command) return MemoryTable.Run(args[1..]);
if (args.Length > 0 && args[0] == UNetStepProfile.Command) return UNetStepProfile.Run(args[1..]);
if (args.Length > 0 && args[0] == UNetStepComparison.Command) return UNetStepComparison.Run(args[1..]);
if (args.Length > 0 && args[0] == RandomModel.Command) return RandomModel.Run(args[1..]);
if (args.Length > 0 && args[0] == StageRatios.Command) return StageRatios.Run(args[1..]);
BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args);
return 0;
