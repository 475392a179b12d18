"""Part VI, the factory floor: lesson 11's quality inspection with few labels and demand forecasting.
Surfaces (the image generator), inspection (models, pretraining, localisation, cost), demand (the series), memo."""
