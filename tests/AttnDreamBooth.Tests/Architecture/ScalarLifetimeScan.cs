using Mono.Cecil;
using Mono.Cecil.Cil;

namespace AttnDreamBooth.Tests.Architecture;

/// <summary>
/// Finds calls that hand libtorch a <c>TorchSharp.Scalar</c> nothing keeps alive. TorchSharp's Scalar frees its native
/// value in a finalizer, and a temporary one (an implicit conversion, or the <c>1</c> that <c>Tensor.add(Tensor)</c>
/// passes as alpha) is unreachable as soon as its handle is read: a garbage collection started by another thread during
/// the native call can finalize it before libtorch reads it ("Expected false to be true" from <c>c10::Scalar::toHalf</c>,
/// seen once in CI). The scan reads IL: TorchSharp's members that create a Scalar without disposing it (and everything
/// in TorchSharp that calls them) are unsafe; our code may not call them, may not convert to Scalar implicitly, and
/// must dispose every Scalar it creates in the method that creates it.
/// </summary>
internal static class ScalarLifetimeScan
{
    private const string ScalarType = "TorchSharp.Scalar";
    private const string ScalarFactories = "TorchSharp.ScalarExtensionMethods";

    // The one place that creates a Scalar without disposing it in the same method: it roots each one until it wraps.
    private const string KeeperType = "AttnDreamBooth.KeptScalars";

    /// <summary>TorchSharp's methods (by full name) that pass an undisposed temporary Scalar to native code, directly
    /// or through another such method.</summary>
    internal static HashSet<string> UnsafeTorchSharpMethods(string torchSharpPath)
    {
        using var module = ModuleDefinition.ReadModule(torchSharpPath);
        var methods = module.GetTypes().SelectMany(t => t.Methods).Where(m => m.HasBody).ToList();
        var unsafeMethods = new HashSet<string>(StringComparer.Ordinal);
        var callers = new Dictionary<string, List<string>>(StringComparer.Ordinal);
        foreach (var method in methods)
        {
            int created = 0, disposed = 0;
            foreach (var (callee, at) in Calls(method))
            {
                if (CreatesScalar(callee)) created++;
                if (DisposesScalar(callee, at, method)) disposed++;
                string key = callee.FullName;
                if (!callers.TryGetValue(key, out var list)) callers[key] = list = [];
                list.Add(method.FullName);
            }
            // A Scalar kept in a field lives as long as its owner, so only methods that neither dispose nor store one count.
            if (created > 0 && disposed == 0 && !StoresScalar(method)) unsafeMethods.Add(method.FullName);
        }
        var pending = new Queue<string>(unsafeMethods);
        while (pending.TryDequeue(out var name))
        {
            if (!callers.TryGetValue(name, out var list)) continue;
            foreach (var caller in list)
                if (unsafeMethods.Add(caller)) pending.Enqueue(caller);
        }
        return unsafeMethods;
    }

    /// <summary>Every place in <paramref name="assemblyPath"/> (in types whose full name starts with
    /// <paramref name="typePrefix"/> and not with <paramref name="exceptTypePrefix"/>) that breaks the rule, as
    /// "file:line Type::Method: reason".</summary>
    internal static List<string> Violations(string assemblyPath, HashSet<string> unsafeTorchSharp, string typePrefix = "",
        string? exceptTypePrefix = null)
    {
        using var module = ModuleDefinition.ReadModule(assemblyPath, new ReaderParameters { ReadSymbols = true });
        var found = new List<string>();
        // A module whose forward passes a temporary is reached through Module.call, which the call graph cannot follow,
        // so creating one (its constructor or a factory returning it) counts.
        var unsafeModules = unsafeTorchSharp.Where(n => n.Contains("::forward(", StringComparison.Ordinal))
            .Select(n => n[(n.IndexOf(' ') + 1)..n.IndexOf("::", StringComparison.Ordinal)]).ToHashSet(StringComparer.Ordinal);
        var types = module.GetTypes().Where(t => t.FullName.StartsWith(typePrefix, StringComparison.Ordinal) && t.FullName != KeeperType
            && (exceptTypePrefix is null || !t.FullName.StartsWith(exceptTypePrefix, StringComparison.Ordinal)));
        foreach (var method in types.SelectMany(t => t.Methods).Where(m => m.HasBody))
        {
            int created = 0, disposed = 0;
            foreach (var (callee, at) in Calls(method))
            {
                if (IsImplicitConversion(callee))
                    found.Add($"{Describe(method, at)}: converts {callee.Parameters[0].ParameterType.Name} to Scalar implicitly for {Consumer(at)}");
                else if (unsafeTorchSharp.Contains(callee.FullName))
                    found.Add($"{Describe(method, at)}: calls {callee.DeclaringType.Name}::{callee.Name}({string.Join(", ", callee.Parameters.Select(p => p.ParameterType.Name))})");
                string? made = callee.Name == ".ctor" ? callee.DeclaringType.FullName : callee.ReturnType.FullName;
                if (made is not null && unsafeModules.Contains(made))
                    found.Add($"{Describe(method, at)}: uses {callee.DeclaringType.Name}::{callee.Name}, a module whose forward passes a temporary Scalar");
                if (IsToScalar(callee)) created++;
                if (DisposesScalar(callee, at, method)) disposed++;
            }
            if (created > disposed && !StoresScalar(method))
                found.Add($"{Describe(method, null)}: creates {created} Scalar(s) but disposes {disposed}");
        }
        return found;
    }

    private static IEnumerable<(MethodReference Callee, Instruction At)> Calls(MethodDefinition method) =>
        method.Body.Instructions
            .Where(i => i.OpCode.Code is Code.Call or Code.Callvirt or Code.Newobj or Code.Ldftn)
            .Where(i => i.Operand is MethodReference)
            .Select(i => ((MethodReference)i.Operand, i));

    private static string Consumer(Instruction at)
    {
        for (var i = at.Next; i is not null; i = i.Next)
            if (i.Operand is MethodReference m && i.OpCode.Code is Code.Call or Code.Callvirt or Code.Newobj
                && m.Parameters.Any(p => p.ParameterType.FullName == ScalarType))
                return $"{m.DeclaringType.Name}::{m.Name}({string.Join(", ", m.Parameters.Select(p => p.ParameterType.Name))})";
        return "?";
    }

    private static bool IsImplicitConversion(MethodReference m) =>
        m.Name == "op_Implicit" && m.DeclaringType.FullName == ScalarType && m.ReturnType.FullName == ScalarType;

    private static bool IsToScalar(MethodReference m) => m.Name == "ToScalar" && m.DeclaringType.FullName == ScalarFactories;

    private static bool CreatesScalar(MethodReference m) => IsImplicitConversion(m) || IsToScalar(m);

    // `using` disposes through IDisposable, so the receiver's type is read from the local loaded just before the call.
    private static bool DisposesScalar(MethodReference m, Instruction at, MethodDefinition method)
    {
        if (m.Name != "Dispose") return false;
        if (m.DeclaringType.FullName == ScalarType) return true;
        if (m.DeclaringType.FullName != "System.IDisposable") return false;
        var local = at.Previous is { } load ? LoadedLocal(load, method) : null;
        return local?.VariableType.FullName == ScalarType;
    }

    private static VariableDefinition? LoadedLocal(Instruction load, MethodDefinition method)
    {
        var locals = method.Body.Variables;
        return load.OpCode.Code switch
        {
            Code.Ldloc_0 => locals[0],
            Code.Ldloc_1 => locals[1],
            Code.Ldloc_2 => locals[2],
            Code.Ldloc_3 => locals[3],
            Code.Ldloc or Code.Ldloc_S => (VariableDefinition)load.Operand,
            _ => null,
        };
    }

    private static bool StoresScalar(MethodDefinition method) =>
        method.Body.Instructions.Any(i => i.OpCode.Code is Code.Stfld or Code.Stsfld
            && i.Operand is FieldReference f && f.FieldType.FullName == ScalarType);

    private static string Describe(MethodDefinition method, Instruction? at)
    {
        var points = method.DebugInformation.SequencePoints.Where(p => !p.IsHidden).ToList();
        var point = at is null ? points.FirstOrDefault() : points.LastOrDefault(p => p.Offset <= at.Offset);
        string where = point is null ? "" : $"{Path.GetFileName(point.Document.Url)}:{point.StartLine} ";
        return $"{where}{method.DeclaringType.FullName}::{method.Name}";
    }
}
