//! The target: torchvision resnet50's parameter and buffer names and shapes, without fc.

/// torchvision resnet50's base width (channels of the stem).
pub const WIDTH: usize = 64;

/// (name, shape) of every tensor of torchvision resnet50 minus fc, without num_batches_tracked (265).
pub fn backbone() -> Vec<(String, Vec<usize>)> {
    backbone_of_width(WIDTH)
}

/// The same names for a ResNet50 of base width `w` (64 is torchvision's; small widths serve tests).
pub fn backbone_of_width(w: usize) -> Vec<(String, Vec<usize>)> {
    let mut out = Vec::new();
    let bn = |out: &mut Vec<(String, Vec<usize>)>, name: &str, c: usize| {
        for p in ["weight", "bias", "running_mean", "running_var"] {
            out.push((format!("{name}.{p}"), vec![c]));
        }
    };
    out.push(("conv1.weight".to_string(), vec![w, 3, 7, 7]));
    bn(&mut out, "bn1", w);
    let mut inplanes = w;
    for (layer, (blocks, planes)) in [(3, w), (4, 2 * w), (6, 4 * w), (3, 8 * w)].into_iter().enumerate() {
        for b in 0..blocks {
            let p = format!("layer{}.{b}", layer + 1);
            out.push((format!("{p}.conv1.weight"), vec![planes, inplanes, 1, 1]));
            bn(&mut out, &format!("{p}.bn1"), planes);
            out.push((format!("{p}.conv2.weight"), vec![planes, planes, 3, 3]));
            bn(&mut out, &format!("{p}.bn2"), planes);
            out.push((format!("{p}.conv3.weight"), vec![planes * 4, planes, 1, 1]));
            bn(&mut out, &format!("{p}.bn3"), planes * 4);
            if b == 0 {
                out.push((format!("{p}.downsample.0.weight"), vec![planes * 4, inplanes, 1, 1]));
                bn(&mut out, &format!("{p}.downsample.1"), planes * 4);
            }
            inplanes = planes * 4;
        }
    }
    out
}

/// Whether `name` is the num_batches_tracked buffer of one of the backbone's batch norms.
pub fn is_batches_tracked(name: &str, backbone: &[(String, Vec<usize>)]) -> bool {
    name.strip_suffix(".num_batches_tracked")
        .is_some_and(|m| backbone.iter().any(|(n, _)| n.strip_suffix(".running_mean") == Some(m)))
}

#[cfg(test)]
mod tests {
    #[test]
    fn has_265_tensors_and_53_batch_norms() {
        let b = super::backbone();
        assert_eq!(b.len(), 265);
        assert_eq!(b.iter().filter(|(n, _)| n.ends_with("running_var")).count(), 53);
        assert!(super::is_batches_tracked("layer4.2.bn3.num_batches_tracked", &b));
        assert!(!super::is_batches_tracked("fc.num_batches_tracked", &b));
    }
}
