using System.Text.Json;
using AttnDreamBooth.Text;
using Xunit.Sdk;

namespace AttnDreamBooth.Tests.Parity;

/// <summary>"&lt;case&gt;/tokenizer": every prompt of tokenizer_cases.json (unpadded ids, BPE tokens, padded ids, mask)
/// and the text encoder's input ids built from the case prompts (derived_facts.prompts), all exact.</summary>
public sealed class TokenizerCheck : IParityCheck
{
    private const string InputIds = "text_encoder.input_ids";

    public string Name => "tokenizer";

    public IReadOnlyCollection<string> Components => ["tokenizer/text_encoder"];

    public bool AppliesTo(FixtureCase fixture) =>
        fixture.Kind == "sd_pipeline" && (TokenizerCases.Exists(fixture) || fixture.HasTensor(InputIds));

    public IEnumerable<string> Claims(FixtureCase fixture) => fixture.HasTensor(InputIds) ? [InputIds] : [];

    public void Run(ParityContext context)
    {
        var tokenizer = ClipTokenizer.FromFolder(Path.Combine(context.Case.PipelineFolder, "tokenizer"));
        if (TokenizerCases.Exists(context.Case))
        {
            Assert.Equal(TokenizerCases.ReferencePadId(context.Case), tokenizer.PadTokenId);
            var cases = TokenizerCases.Load(context.Case);
            Assert.NotEmpty(cases);
            var problems = TokenizerCases.Compare(tokenizer, cases);
            if (problems.Count > 0)
                throw new XunitException($"{context.Case.Name}: {problems.Count} tokenizer mismatches in {cases.Count} prompts:\n  {string.Join("\n  ", problems.Take(20))}");
        }
        if (context.Has(InputIds))
        {
            var prompts = context.Manifest.Fact("prompts").EnumerateArray().Select(p => p.GetString()!).ToArray();
            using var ids = tokenizer.EncodeToTensor(prompts);
            context.AssertClose(InputIds, ids);
        }
    }
}
