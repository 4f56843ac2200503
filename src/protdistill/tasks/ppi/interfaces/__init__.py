"""Where two proteins touch: interaction-map heatmaps (`ppi explain`), maps scored against solved
complexes (`ppi interfaces`) and supervised interface fine-tuning. Uses a trained run."""
