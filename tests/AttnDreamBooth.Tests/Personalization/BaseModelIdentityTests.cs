using AttnDreamBooth.Personalization;

namespace AttnDreamBooth.Tests.Personalization;

public sealed class BaseModelIdentityTests
{
    [Theory]
    [InlineData("/home/me/.cache/huggingface/hub/models--stabilityai--stable-diffusion-2-1-base/snapshots/5ede9e4", "stabilityai/stable-diffusion-2-1-base")]
    [InlineData("/home/me/.cache/huggingface/hub/models--runwayml--stable-diffusion-v1-5/snapshots/1d0c4eb/", "runwayml/stable-diffusion-v1-5")]
    [InlineData("/data/models/sd15", "sd15")]
    [InlineData("/data/snapshots/abc", "abc")]
    public void TheNameIsTheRepositoryOfACacheEntryOrTheFoldersName(string root, string expected) =>
        Assert.Equal(expected, BaseModelIdentity.PortableName(root));
}
