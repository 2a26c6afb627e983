"""ganref.py: the GAN losses and gradient penalties in PyTorch, written from their definitions
(lib/backend/loss_math.h, lib/gan/trainer.h), for the training-step parity script
(test_train_torch.py, float64) and the speed peer (bench/torch_peer.py, float32): one
construction both use.

    import ganref
    l_real, l_fake, l_g = ganref.losses("hinge", 0.0)
    loss = l_real(D(real)) + l_fake(D(fake.detach()))
    loss = loss + ganref.gradient_penalty(D, xhat.requires_grad_(True), 10.0)   # wgan-gp
    loss.backward()

The penalties differentiate the critic's input gradient with autograd.grad(create_graph=True),
so the loss's backward reaches the critic's parameters through a double backward."""
import torch
import torch.nn.functional as F


def losses(kind, smooth):
    """(D loss on real logits, D loss on fake logits, G loss on fake logits), means over the batch,
    for kind bce, ns, wgan, wgan-gp, hinge, lsgan; smooth: the real targets' label smoothing
    (bce, ns)."""
    bce = F.binary_cross_entropy_with_logits
    if kind in ("bce", "ns"):
        d_real = lambda y: bce(y, torch.full_like(y, 1 - smooth))
        d_fake = lambda y: bce(y, torch.zeros_like(y))
        g = (lambda y: -bce(y, torch.zeros_like(y))) if kind == "bce" else (lambda y: bce(y, torch.ones_like(y)))
        return d_real, d_fake, g
    if kind in ("wgan", "wgan-gp"):
        return (lambda y: -y.mean()), (lambda y: y.mean()), (lambda y: -y.mean())
    if kind == "hinge":
        return (lambda y: F.relu(1 - y).mean()), (lambda y: F.relu(1 + y).mean()), (lambda y: -y.mean())
    return (lambda y: 0.5 * ((y - 1) ** 2).mean()), (lambda y: 0.5 * (y ** 2).mean()), \
        (lambda y: 0.5 * ((y - 1) ** 2).mean())


def input_grad(critic, x):
    """grad_x sum_i critic(x)_i as (B, C*H*W), kept in the graph (create_graph) so that a loss
    built from it differentiates into the critic's parameters; x must require grad."""
    g, = torch.autograd.grad(critic(x).sum(), x, create_graph=True)
    return g.reshape(x.shape[0], -1)


def gradient_penalty(critic, xhat, lam):
    """WGAN-GP's lam * mean_i (|grad_x critic(xhat_i)| - 1)^2 (Gulrajani et al. 2017) at the
    interpolates xhat (which must require grad)."""
    return lam * ((input_grad(critic, xhat).norm(dim=1) - 1) ** 2).mean()


def r_penalty(critic, x, w):
    """R1/R2's w/2 mean_i |grad_x critic(x_i)|^2 at x (which must require grad)."""
    return w / 2 * (input_grad(critic, x) ** 2).sum(dim=1).mean()
